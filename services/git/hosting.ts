/**
 * The cloud's own git hosting: bare repos under <data>/git/<project>/<repo>.git served over smart HTTP by the real
 * `git http-backend` (CGI), so clone/fetch/push work with the git CLI and isomorphic-git alike.
 * A successful receive-pack (push) is turned into push events: the same events an external webhook produces.
 */
import { Hono } from "hono";
import { join } from "node:path";
import { TauError } from "../../runtime/errors.ts";
import { NAME_RE } from "../../runtime/schema/fields.ts";
import { commitFiles, initBareRepo, listHeads } from "../../runtime/git/git.ts";
import { fetchUpstreamBranches } from "../../runtime/git/upstream.ts";

export interface PushEvent {
  project: string;
  repo: string; // "config" | "code"
  branch: string;
  commit: string;
  source: "git" | "webhook";
}

export class GitHosting {
  readonly root: string;
  #onPush: (e: PushEvent) => void | Promise<void>;
  // One receive-pack at a time per repo, so the before/after ref snapshots describe exactly one push.
  #pushLocks = new Map<string, Promise<unknown>>();

  constructor(dataDir: string, onPush: (e: PushEvent) => void | Promise<void>) {
    this.root = join(dataDir, "git");
    this.#onPush = onPush;
  }

  repoPath(project: string, repo: string): string {
    if (!NAME_RE.test(project) || !NAME_RE.test(repo)) {
      throw new TauError(`invalid repository name ${project}/${repo}`, { status: 404 });
    }
    return join(this.root, project, `${repo}.git`);
  }

  async exists(project: string, repo: string): Promise<boolean> {
    try {
      return (await Deno.stat(join(this.repoPath(project, repo), "HEAD"))).isFile;
    } catch {
      return false;
    }
  }

  async createRepo(project: string, repo: string, initialFiles?: Record<string, string>): Promise<void> {
    const path = this.repoPath(project, repo);
    if (await this.exists(project, repo)) throw new TauError(`repository ${project}/${repo} already exists`);
    await Deno.mkdir(join(this.root, project), { recursive: true });
    await initBareRepo(path);
    if (initialFiles) await commitFiles(path, "main", initialFiles, "tau: new project");
  }

  async createMirror(project: string, repo: string, upstream: string): Promise<void> {
    await this.createRepo(project, repo);
    await this.fetchUpstream(project, repo, upstream);
  }

  /** Remove a project's repos (a project whose creation failed half way must leave nothing behind). */
  async removeProjectRepos(project: string): Promise<void> {
    this.repoPath(project, "config"); // validates the name
    await Deno.remove(join(this.root, project), { recursive: true }).catch(() => {});
  }

  /** Bring a mirrored repo's branches up to date with its upstream (forced: the upstream is the source of truth). */
  async fetchUpstream(project: string, repo: string, upstream: string): Promise<void> {
    try {
      await fetchUpstreamBranches(this.repoPath(project, repo), upstream);
    } catch (err) {
      if (err instanceof TauError && err.status === 400) throw err; // refused before git ran: say why
      throw new TauError(`cannot fetch ${upstream} for ${project}/${repo}`, {
        status: 502,
        hint: "check that the upstream URL is right and reachable from this node",
        detail: (err as TauError).detail,
      });
    }
  }

  /** Hono sub-app serving /<project>/<repo>.git/... (mount it under /git). */
  routes(): Hono {
    const app = new Hono();
    app.all("/:project/:repo{[a-z][a-z0-9_]*\\.git}/*", async (c) => {
      const project = c.req.param("project");
      const repo = c.req.param("repo").replace(/\.git$/, "");
      if (!(await this.exists(project, repo))) {
        return c.text(`repository ${project}/${repo}.git not found: create it with tau new project ${project}\n`, 404);
      }
      const url = new URL(c.req.url);
      const pathInfo = url.pathname.slice(url.pathname.indexOf(`/${project}/`));
      const isPush = pathInfo.endsWith("/git-receive-pack") && c.req.method === "POST";
      if (!isPush) return await this.#cgi(c.req.raw, pathInfo, url.search.slice(1));
      return await this.#withPushLock(`${project}/${repo}`, async () => {
        const repoDir = this.repoPath(project, repo);
        const before = await listHeads(repoDir);
        const res = await this.#cgi(c.req.raw, pathInfo, url.search.slice(1));
        // The response body is the push's report; the refs are final once the backend has exited, which
        // #cgi signals by resolving `done` after its stdout ends.
        const done = (res as Response & { done?: Promise<void> }).done;
        (done ?? Promise.resolve()).then(async () => {
          const after = await listHeads(repoDir);
          for (const [branch, commit] of after) {
            if (before.get(branch) !== commit) {
              await this.#onPush({ project, repo, branch, commit, source: "git" });
            }
          }
        }).catch((err) => console.error(`push hook for ${project}/${repo} failed: ${err}`));
        return res;
      });
    });
    return app;
  }

  async #withPushLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#pushLocks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const chain = prev.then(() => held);
    this.#pushLocks.set(key, chain);
    await prev;
    try {
      const res = await fn();
      const done = (res as Response & { done?: Promise<void> }).done;
      if (done) done.finally(release);
      else release();
      return res;
    } catch (err) {
      release();
      throw err;
    } finally {
      chain.then(() => {
        if (this.#pushLocks.get(key) === chain) this.#pushLocks.delete(key);
      });
    }
  }

  /** Run git http-backend as CGI: request body on stdin, CGI headers + body on stdout. */
  async #cgi(req: Request, pathInfo: string, query: string): Promise<Response> {
    const env: Record<string, string> = {
      GIT_PROJECT_ROOT: this.root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: pathInfo,
      REQUEST_METHOD: req.method,
      QUERY_STRING: query,
      CONTENT_TYPE: req.headers.get("content-type") ?? "",
      REMOTE_ADDR: "127.0.0.1",
      REMOTE_USER: "tau",
    };
    const protocol = req.headers.get("git-protocol");
    if (protocol) env.GIT_PROTOCOL = protocol;
    const encoding = req.headers.get("content-encoding");
    if (encoding) env.HTTP_CONTENT_ENCODING = encoding;
    const length = req.headers.get("content-length");
    if (length) env.CONTENT_LENGTH = length;

    const child = new Deno.Command("git", {
      args: ["http-backend"],
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const feed = req.body ? req.body.pipeTo(child.stdin).catch(() => {}) : child.stdin.close().catch(() => {});
    const stderrText = new Response(child.stderr).text();

    const reader = child.stdout.getReader();
    let buffered = new Uint8Array(0);
    let headerEnd = -1;
    while (headerEnd < 0) {
      const { value, done } = await reader.read();
      if (done) break;
      const next = new Uint8Array(buffered.length + value.length);
      next.set(buffered);
      next.set(value, buffered.length);
      buffered = next;
      headerEnd = findHeaderEnd(buffered);
    }
    if (headerEnd < 0) {
      await feed;
      const status = await child.status;
      const err = (await stderrText).trim();
      return new Response(`git backend failed (exit ${status.code}): ${err}\n`, { status: 500 });
    }
    const headerText = new TextDecoder().decode(buffered.subarray(0, headerEnd));
    const bodyStart = buffered.subarray(headerEnd + (buffered[headerEnd] === 13 ? 4 : 2));
    const headers = new Headers();
    let status = 200;
    for (const line of headerText.split(/\r?\n/)) {
      const i = line.indexOf(":");
      if (i < 0) continue;
      const key = line.slice(0, i).trim();
      const value = line.slice(i + 1).trim();
      if (key.toLowerCase() === "status") status = parseInt(value) || 200;
      else headers.append(key, value);
    }
    let finished!: () => void;
    const done = new Promise<void>((r) => (finished = r));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        if (bodyStart.length) controller.enqueue(bodyStart.slice());
      },
      async pull(controller) {
        const { value, done: end } = await reader.read();
        if (end) {
          controller.close();
          await feed;
          await child.status;
          await stderrText;
          finished();
        } else controller.enqueue(value);
      },
      async cancel() {
        try {
          child.kill();
        } catch { /* already exited */ }
        await child.status;
        finished();
      },
    });
    const res = new Response(body, { status, headers }) as Response & { done?: Promise<void> };
    res.done = done;
    return res;
  }
}

function findHeaderEnd(buf: Uint8Array): number {
  for (let i = 0; i + 1 < buf.length; i++) {
    if (buf[i] === 10 && buf[i + 1] === 10) return i;
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}
