/**
 * The cloud's own git hosting: bare repos under <data>/git/<project>/<repo>.git served over smart HTTP by the real
 * `git http-backend` (CGI, services/git/cgi.ts), so clone/fetch/push work with the git CLI and isomorphic-git alike.
 * A successful receive-pack (push) is turned into push events, the same events an external webhook produces, and
 * they are recorded before the git client hears that its push succeeded.
 */
import { Hono } from "hono";
import { join } from "node:path";
import { TauError } from "../../runtime/errors.ts";
import { PROJECT_NAME_RE } from "../../runtime/schema/fields.ts";
import { commitFiles, initBareRepo, listHeads } from "../../runtime/git/git.ts";
import { fetchUpstreamBranches } from "../../runtime/git/upstream.ts";
import { clearSpool, runCgi } from "./cgi.ts";

import {
  backendEnv,
  DEFAULT_MAX_PUSH_BYTES,
  sideBandMessage,
  tooLargeMessage,
  usesSideBand,
  writeHooks,
} from "./push_limits.ts";

export interface PushEvent {
  project: string;
  repo: string; // "config" | "code"
  branch: string;
  commit: string;
  /** "recovery": found at start, moved by a push whose jobs were never recorded (the node stopped mid-push). */
  source: "git" | "webhook" | "recovery";
}

export interface GitHostingOptions {
  /** Largest push accepted, in bytes (DEFAULT_MAX_PUSH_BYTES). */
  maxPushBytes?: number;
}

/**
 * Test-only (tests/hardening_git_test.ts): when set, the node stops right after a push moved refs and before it
 * records the push's jobs, and prints "test hold: ..." so a test can kill -9 it at exactly that point.
 */
const TEST_HOLD_ENV = "TAU_TEST_HOLD_AFTER_REF_UPDATE";
/** In a bare repo while its push runs: the heads from before the push, as JSON. */
const PUSH_MARKER = "tau-push-in-progress.json";

/** What git hosting asks of replication (GitReplicator): both run before the client or the API hears "done". */
export interface GitReplication {
  /** A push moved these branches here (sha null: deleted). Returns a warning for the client, if any. */
  afterPush(project: string, repo: string, changed: Map<string, string | null>): Promise<string | undefined>;
  afterCreate(project: string, repo: string): Promise<void>;
}

export class GitHosting {
  readonly root: string;
  readonly maxPushBytes: number;
  #spoolDir: string;
  #hooksDir: string;
  #hooks?: Promise<string>;
  #onPush: (e: PushEvent) => void | Promise<void>;
  // One receive-pack at a time per repo, so the before/after ref snapshots describe exactly one push.
  #pushLocks = new Map<string, Promise<unknown>>();
  #stopping = new AbortController();
  #replication?: GitReplication;

  constructor(dataDir: string, onPush: (e: PushEvent) => void | Promise<void>, opts: GitHostingOptions = {}) {
    this.root = join(dataDir, "git");
    this.#spoolDir = join(dataDir, "git-spool");
    this.#hooksDir = join(dataDir, "git-hooks");
    this.maxPushBytes = opts.maxPushBytes ?? DEFAULT_MAX_PUSH_BYTES;
    this.#onPush = onPush;
  }

  /** On a cloud: pushes and new repos reach the other auth and monkey nodes (services/git/replicate.ts). */
  setReplication(replication: GitReplication): void {
    this.#replication = replication;
  }

  /** After creating a project's repos here (auth): they reach the other nodes before the project is registered. */
  async announce(project: string, repo: string): Promise<void> {
    await this.#replication?.afterCreate(project, repo);
  }

  /** A repo path from a project name and a repo name (config, code), both held to PROJECT_NAME_RE. */
  repoPath(project: string, repo: string): string {
    if (!PROJECT_NAME_RE.test(project) || !PROJECT_NAME_RE.test(repo)) {
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
      // What the upstream brought reaches the other nodes too (the build may run on one of them).
      await this.#replication?.afterCreate(project, repo);
    } catch (err) {
      if (err instanceof TauError && err.status === 400) throw err; // refused before git ran: say why
      throw new TauError(`cannot fetch ${upstream} for ${project}/${repo}`, {
        status: 502,
        hint: "check that the upstream URL is right and reachable from this node",
        detail: (err as TauError).detail,
      });
    }
  }

  /**
   * At start: a push that moved refs but whose jobs were not recorded (the node died in between) is recorded now.
   * Each push leaves a marker with the heads from before it until its jobs are recorded; a marker found here is
   * compared with the repo's heads, and every moved branch becomes a push event (source "recovery").
   */
  async recoverInterruptedPushes(): Promise<PushEvent[]> {
    const events: PushEvent[] = [];
    let projects: string[];
    try {
      projects = (await Array.fromAsync(Deno.readDir(this.root))).filter((e) => e.isDirectory).map((e) => e.name);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return events;
      throw err;
    }
    for (const project of projects.filter((p) => PROJECT_NAME_RE.test(p))) {
      for (const repo of ["config", "code"]) {
        const dir = join(this.root, project, `${repo}.git`);
        // A push killed mid-upload (kill -9, power loss) leaves receive-pack's quarantine of objects it never
        // accepted; nothing else writes there, and no push runs yet.
        await removeQuarantines(join(dir, "objects"));
        const marker = join(dir, PUSH_MARKER);
        let before: Map<string, string>;
        try {
          before = new Map(Object.entries(JSON.parse(await Deno.readTextFile(marker))));
        } catch {
          continue; // no interrupted push (or a marker cut short before the push began: nothing moved yet)
        }
        const moved = await this.#recordMoved(project, repo, before, "recovery");
        if (moved.ok) await Deno.remove(marker).catch(() => {});
        events.push(...moved.events);
      }
    }
    return events;
  }

  /** Stop every running backend (SIGTERM: git removes its half-received objects) so the node can exit promptly. */
  close(): void {
    this.#stopping.abort();
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
      // PATH_INFO starts at "/<project>/<repo>.git/". Searching for "/<project>/" alone found the mount point for a
      // project named git (/git/git/...); the full prefix cannot occur earlier, since project names have no dots.
      const at = url.pathname.indexOf(`/${project}/${repo}.git/`);
      if (at < 0) return c.text(`not a git path: ${url.pathname.slice(0, 200)}\n`, 404); // e.g. percent-encoded names
      const pathInfo = url.pathname.slice(at);
      const isPush = pathInfo.endsWith("/git-receive-pack") && c.req.method === "POST";
      const query = url.search.slice(1);
      if (!isPush) return await this.#serve(c.req.raw, pathInfo, query, false);
      return await this.#withPushLock(
        `${project}/${repo}`,
        () => this.#push(c.req.raw, project, repo, pathInfo, query),
      );
    });
    return app;
  }

  async #push(req: Request, project: string, repo: string, pathInfo: string, query: string): Promise<Response> {
    const declared = Number(req.headers.get("content-length") ?? NaN);
    if (declared > this.maxPushBytes) {
      return new Response(tooLargeMessage(declared, this.maxPushBytes) + "\n", { status: 413 });
    }
    const repoDir = this.repoPath(project, repo);
    const before = await listHeads(repoDir);
    // The marker outlives a crash between the ref update and the jobs (recoverInterruptedPushes reads it).
    const marker = join(repoDir, PUSH_MARKER);
    await Deno.writeTextFile(marker, JSON.stringify(Object.fromEntries(before)));
    const res = await this.#serve(req, pathInfo, query, true);
    // Stopped mid-upload at shutdown: git keeps the quarantine of a push it was signalled out of (git 2.39).
    if (this.#stopping.signal.aborted) await removeQuarantines(join(repoDir, "objects"));
    if (Deno.env.get(TEST_HOLD_ENV)) {
      const after = await listHeads(repoDir);
      if ([...after].some(([branch, commit]) => before.get(branch) !== commit)) {
        console.error(`test hold: ${project}/${repo} refs moved, jobs not recorded`);
        await new Promise(() => {}); // until the test kills the node
      }
    }
    // Replicated, then recorded, before the client hears "ok": a push git reports as done is on the other nodes
    // (when any is up) and has its builds queued.
    let warning: string | undefined;
    if (this.#replication) {
      const after = await listHeads(repoDir);
      const changed = new Map<string, string | null>();
      for (const [branch, sha] of after) if (before.get(branch) !== sha) changed.set(branch, sha);
      for (const branch of before.keys()) if (!after.has(branch)) changed.set(branch, null);
      if (changed.size) {
        warning = await this.#replication.afterPush(project, repo, changed).catch((err) =>
          `this push is only on this node for now (${
            (err as Error).message
          }); it will reach the others when they are up`
        );
      }
    }
    const { ok } = await this.#recordMoved(project, repo, before, "git");
    if (ok) await Deno.remove(marker).catch(() => {});
    if (!warning) return res;
    const body = new Uint8Array(await res.arrayBuffer());
    if (!res.sideBand) return new Response(body, { status: res.status, headers: res.headers });
    const note = sideBandMessage(warning);
    const joined = new Uint8Array(note.length + body.length);
    joined.set(note);
    joined.set(body, note.length);
    return new Response(joined, { status: res.status, headers: res.headers });
  }

  /** Push events for every branch whose head is no longer what `before` says; ok when all were recorded. */
  async #recordMoved(project: string, repo: string, before: Map<string, string>, source: PushEvent["source"]) {
    const after = await listHeads(this.repoPath(project, repo));
    const events: PushEvent[] = [];
    let ok = true;
    for (const [branch, commit] of after) {
      if (before.get(branch) === commit) continue;
      const event = { project, repo, branch, commit, source };
      try {
        await this.#onPush(event);
        events.push(event);
      } catch (err) {
        ok = false; // the marker stays: the next start tries again
        console.error(`push of ${project}/${repo} ${branch}: recording its build failed: ${err}`);
      }
    }
    return { ok, events };
  }

  /** `sideBand`: the client asked for side-band (a push's first command lists it), so `remote:` lines can be added. */
  async #serve(
    req: Request,
    pathInfo: string,
    query: string,
    isPush: boolean,
  ): Promise<Response & { sideBand?: boolean }> {
    this.#hooks ??= writeHooks(this.#hooksDir).then(async (dir) => {
      await clearSpool(this.#spoolDir);
      return dir;
    });
    const hooksDir = await this.#hooks;
    const result = await runCgi({
      req,
      pathInfo,
      query,
      env: {
        GIT_PROJECT_ROOT: this.root,
        GIT_HTTP_EXPORT_ALL: "1",
        ...backendEnv({ hooksDir, maxPushBytes: this.maxPushBytes }),
      },
      spoolDir: this.#spoolDir,
      // The commands before the pack are a few hundred bytes; git's receive.maxInputSize is the exact limit.
      maxBodyBytes: this.maxPushBytes + (1 << 20),
      collect: isPush,
      signal: this.#stopping.signal,
    });
    let body = result.body;
    if (isPush && result.bodyBytes > this.maxPushBytes && body instanceof Uint8Array && usesSideBand(result.bodyHead)) {
      // git's own refusal ("pack exceeds maximum allowed size") does not say the limit or what to do: add a line.
      const note = sideBandMessage(tooLargeMessage(result.bodyBytes, this.maxPushBytes));
      const joined = new Uint8Array(note.length + body.length);
      joined.set(note);
      joined.set(body, note.length);
      body = joined;
    }
    const res: Response & { sideBand?: boolean } = new Response(body as BodyInit, {
      status: result.status,
      headers: result.headers,
    });
    res.sideBand = isPush && usesSideBand(result.bodyHead);
    return res;
  }

  async #withPushLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#pushLocks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.catch(() => {});
    this.#pushLocks.set(key, settled);
    settled.then(() => {
      if (this.#pushLocks.get(key) === settled) this.#pushLocks.delete(key);
    });
    return await run;
  }
}

async function removeQuarantines(objects: string): Promise<void> {
  try {
    for await (const e of Deno.readDir(objects)) {
      if (e.isDirectory && e.name.startsWith("incoming-")) {
        await Deno.remove(join(objects, e.name), { recursive: true }).catch(() => {});
      }
    }
  } catch { /* no such repo */ }
}
