/**
 * The project repos live on every node that runs `auth`. Which commit each branch points at is shared state: the
 * replicated store holds ["git", "ref", project, repo, branch] -> { sha } (last writer wins, like every key). The
 * objects travel as git bundles over the `git` RPC protocol, from a node that has them.
 *
 * - After a push is applied on one node, its new branch heads go into the store and its objects to every live auth
 *   node, before git hears that the push succeeded: once acknowledged, a commit is on at least two nodes whenever
 *   another auth node is up (the caller refuses the push when none acknowledged while others are known).
 * - A node that was away catches up from the store: every ref whose sha it lacks is fetched from the node that wrote
 *   it, or any other auth node that has it; it does so at start, when an auth node (re)appears, and on every change.
 * Two pushes to one branch on two nodes within the replication round trip both succeed locally; the later one (by
 * the store's clock) ends up on the branch everywhere. Git itself refuses non-fast-forward pushes on each node.
 */
import { join } from "node:path";
import { TauError } from "../../runtime/errors.ts";
import { git, gitText, initBareRepo, listHeads } from "../../runtime/git/git.ts";
import { DEAD_AFTER_MS, type Directory } from "../p2p/directory.ts";
import type { Libp2pNode } from "../p2p/node.ts";
import { type RpcClient, serveRpc } from "../p2p/rpc.ts";
import type { StateStore } from "../kvdb/mod.ts";
import type { GitHosting, GitReplication } from "./hosting.ts";
import { concatBytes } from "../../runtime/bytes.ts";

export const GIT_SERVICE = "git";
const REPLICATE_TIMEOUT_MS = 20_000;
/** A catch-up that could not fetch everything runs again this much later, at most MAX_RETRIES times in a row. */
const RETRY_MS = 2_000;
const MAX_RETRIES = 30;

type Heads = [string, string][];
export interface RefValue {
  sha: string;
}

export interface GitReplicatorDeps {
  hosting: GitHosting;
  state: StateStore;
  libp2p: Libp2pNode;
  rpc: RpcClient;
  directory: Directory;
  log: (line: string) => void;
}

async function hasCommit(repo: string, sha: string): Promise<boolean> {
  try {
    await git(["cat-file", "-e", `${sha}^{commit}`], { cwd: repo });
    return true;
  } catch {
    return false;
  }
}

/** Whether `a` is an ancestor of (or equal to) `b`. */
async function isAncestor(repo: string, a: string, b: string): Promise<boolean> {
  try {
    await git(["merge-base", "--is-ancestor", a, b], { cwd: repo });
    return true;
  } catch {
    return false;
  }
}

/** A bundle of everything reachable from `tips` that is not reachable from `have` (shas this repo knows). */
async function bundle(repo: string, tips: string[], have: string[]): Promise<Uint8Array> {
  const known: string[] = [];
  for (const sha of have) if (await hasCommit(repo, sha)) known.push(sha);
  const file = await Deno.makeTempFile({ prefix: "tau-bundle-" });
  try {
    // A bundle needs refs to name its tips: temporary ones under refs/tau-bundle/, removed after.
    const refs = tips.map((_, i) => `refs/tau-bundle/${i}`);
    for (let i = 0; i < tips.length; i++) await git(["update-ref", refs[i], tips[i]], { cwd: repo });
    try {
      const args = ["bundle", "create", file, ...refs, ...known.map((s) => `^${s}`)];
      await git(args, { cwd: repo }).catch((err) => {
        // "Refusing to create empty bundle": everything is already there.
        if (/empty bundle/i.test((err as TauError).detail ?? "")) return;
        throw err;
      });
      return await Deno.readFile(file).catch(() => new Uint8Array(0));
    } finally {
      for (const r of refs) await git(["update-ref", "-d", r], { cwd: repo }).catch(() => {});
    }
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/** Unpack a bundle's objects into a repo (its refs are not kept). */
async function unbundle(repo: string, data: Uint8Array): Promise<void> {
  if (data.length === 0) return;
  const file = await Deno.makeTempFile({ prefix: "tau-bundle-" });
  try {
    await Deno.writeFile(file, data);
    await git(["fetch", "--quiet", file, "+refs/tau-bundle/*:refs/tau-incoming/*"], { cwd: repo });
    const incoming = await gitText(["for-each-ref", "--format=%(refname)", "refs/tau-incoming"], { cwd: repo });
    for (const ref of incoming.split("\n").filter(Boolean)) await git(["update-ref", "-d", ref], { cwd: repo });
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

export class GitReplicator implements GitReplication {
  readonly #d: GitReplicatorDeps;
  readonly #self: string;
  #catchingUp: Promise<void> = Promise.resolve();
  #offs: (() => void)[] = [];
  #retry?: ReturnType<typeof setTimeout>;
  #retries = 0;

  constructor(deps: GitReplicatorDeps) {
    this.#d = deps;
    this.#self = deps.libp2p.peerId.toString();
  }

  /** Live nodes that keep the repos (auth, and monkey: builds read them), this one excluded. */
  peers(): string[] {
    const peers = new Set(
      [...this.#d.directory.peersFor("auth"), ...this.#d.directory.peersFor("monkey")].map((e) => e.peer),
    );
    peers.delete(this.#self);
    return [...peers].sort();
  }

  async afterPush(project: string, repo: string, changed: Map<string, string | null>): Promise<string | undefined> {
    const { acked, asked } = await this.replicate(project, repo, changed);
    if (asked > 0 && acked === 0) {
      return `tau: this push is only on this node for now (none of the ${asked} other nodes that keep repos ` +
        "answered); it reaches them when they are back";
    }
    return undefined;
  }

  async afterCreate(project: string, repo: string): Promise<void> {
    const heads = await listHeads(this.#d.hosting.repoPath(project, repo));
    await this.replicate(project, repo, new Map(heads));
  }

  /** Before a build here: the commit it is for is in this node's repo (fetched from a peer if not), bounded. */
  async ensureCommit(project: string, repo: string, sha: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.#d.hosting.exists(project, repo)) {
        if (await hasCommit(this.#d.hosting.repoPath(project, repo), sha)) return;
      }
      if (Date.now() > deadline) {
        throw new TauError(`commit ${sha.slice(0, 12)} of ${project}/${repo} has not reached this node`, {
          status: 503,
          hint: "check that the node that took the push is up; the build runs again on the next push",
        });
      }
      await this.catchUp();
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  async start(): Promise<void> {
    await serveRpc(this.#d.libp2p, GIT_SERVICE, async (req) => {
      const p = req.params as { project: string; repo: string; tips?: string[]; have?: string[]; heads?: Heads };
      const path = this.#d.hosting.repoPath(p.project, p.repo);
      switch (req.method) {
        case "heads": {
          const exists = await this.#d.hosting.exists(p.project, p.repo);
          return { result: { exists, heads: exists ? [...(await listHeads(path))] : [] } };
        }
        case "bundle": {
          if (!(await this.#d.hosting.exists(p.project, p.repo))) {
            throw new TauError(`repository ${p.project}/${p.repo} is not on this node`, { status: 404 });
          }
          const tips: string[] = [];
          for (const sha of p.tips ?? []) if (await hasCommit(path, sha)) tips.push(sha);
          if (tips.length === 0) throw new TauError("none of those commits is on this node", { status: 404 });
          return { result: { tips }, body: await bundle(path, tips, p.have ?? []) };
        }
        case "receive": {
          const chunks: Uint8Array[] = [];
          for await (const c of req.body ?? []) chunks.push(c);
          await this.#ensureRepo(p.project, p.repo);
          await unbundle(path, concatBytes(chunks));
          await this.#applyHeads(p.project, p.repo, p.heads ?? []);
          return { result: { ok: true } };
        }
        default:
          throw new TauError(`git has no method ${req.method}`, { status: 400 });
      }
    });
    // Refs moved elsewhere (a push on another node, or anti-entropy bringing one back): fetch what is missing.
    this.#offs.push(this.#d.state.onChange((entries) => {
      if (entries.some((e) => e.key[0] === "git" || e.key[0] === "*")) this.catchUp();
    }));
    // A node that keeps repos appeared, or is back after it was taken for dead (a restart, a partition healed): what
    // it wrote while away may not have reached this node yet.
    const lastBeat = new Map<string, number>();
    this.#offs.push(this.#d.directory.onChange((e) => {
      if (e.peer === this.#self || !e.services.includes("auth")) return;
      const last = lastBeat.get(e.peer);
      lastBeat.set(e.peer, e.seen);
      if (last === undefined || e.seen - last > DEAD_AFTER_MS) this.catchUp();
    }));
    this.catchUp();
  }

  stop(): void {
    for (const off of this.#offs.splice(0)) off();
    clearTimeout(this.#retry);
  }

  async #ensureRepo(project: string, repo: string): Promise<void> {
    if (await this.#d.hosting.exists(project, repo)) return;
    const path = this.#d.hosting.repoPath(project, repo);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await initBareRepo(path);
  }

  /** Point local branches at these shas (objects already here); a null sha deletes the branch. */
  async #applyHeads(project: string, repo: string, heads: Heads): Promise<void> {
    const path = this.#d.hosting.repoPath(project, repo);
    for (const [branch, sha] of heads) {
      if (!/^[0-9a-f]{40}$/.test(sha) || !(await hasCommit(path, sha))) continue;
      await git(["update-ref", `refs/heads/${branch}`, sha], { cwd: path });
    }
  }

  /**
   * After a push applied here: record its heads in the store and send its objects to every live auth node.
   * Returns how many acknowledged and how many were asked.
   */
  async replicate(
    project: string,
    repo: string,
    changed: Map<string, string | null>,
  ): Promise<{ acked: number; asked: number }> {
    const path = this.#d.hosting.repoPath(project, repo);
    for (const [branch, sha] of changed) {
      if (sha) await this.#d.state.set(["git", "ref", project, repo, branch], { sha } satisfies RefValue);
      else await this.#d.state.delete(["git", "ref", project, repo, branch]);
    }
    const heads: Heads = [...(await listHeads(path))];
    const peers = this.peers();
    const results = await Promise.allSettled(peers.map(async (peer) => {
      const theirs = (await this.#d.rpc.call(peer, GIT_SERVICE, "heads", { project, repo })).result as {
        heads: Heads;
      };
      const have = theirs.heads.map(([, sha]) => sha);
      const body = await bundle(path, heads.map(([, sha]) => sha), have);
      await this.#d.rpc.call(peer, GIT_SERVICE, "receive", { project, repo, heads }, {
        body,
        timeoutMs: REPLICATE_TIMEOUT_MS,
      });
    }));
    for (const [i, r] of results.entries()) {
      if (r.status === "rejected") this.#d.log(`git: ${project}/${repo} did not reach ${peers[i]}: ${r.reason}`);
    }
    return { acked: results.filter((r) => r.status === "fulfilled").length, asked: peers.length };
  }

  /** Bring every repo in line with the store's refs, fetching what is missing; runs one at a time. */
  catchUp(): Promise<void> {
    this.#catchingUp = this.#catchingUp.then(() => this.#catchUp()).catch((err) =>
      this.#d.log(`git: catching up failed: ${(err as Error).message}`)
    );
    return this.#catchingUp;
  }

  /**
   * A catch-up that could not fetch something (its sources unreachable for now: connections right after a heal can be
   * stale) runs again after RETRY_MS, up to MAX_RETRIES times in a row; a complete one resets the count. Without it,
   * a repo missed here would wait for the next push to that project.
   */
  #scheduleRetry(complete: boolean): void {
    clearTimeout(this.#retry);
    if (complete) {
      this.#retries = 0;
      return;
    }
    if (this.#retries >= MAX_RETRIES) return;
    this.#retries++;
    this.#retry = setTimeout(() => this.catchUp(), RETRY_MS);
    Deno.unrefTimer(this.#retry as unknown as number);
  }

  async #catchUp(): Promise<void> {
    let complete = true;
    try {
      complete = await this.#catchUpOnce();
    } catch (err) {
      complete = false;
      throw err;
    } finally {
      this.#scheduleRetry(complete);
    }
  }

  /** One pass; false when some missing commits could be fetched from no peer. */
  async #catchUpOnce(): Promise<boolean> {
    let complete = true;
    const refs = await this.#d.state.list<RefValue>(["git", "ref"]);
    const byRepo = new Map<string, { project: string; repo: string; heads: Heads; writers: string[] }>();
    for (const e of refs) {
      const [, , project, repo, branch] = e.key;
      const k = `${project}/${repo}`;
      const entry = byRepo.get(k) ?? { project, repo, heads: [], writers: [] };
      entry.heads.push([branch, e.value.sha]);
      entry.writers.push(e.version[2]);
      byRepo.set(k, entry);
    }
    for (const { project, repo, heads, writers } of byRepo.values()) {
      await this.#ensureRepo(project, repo);
      const path = this.#d.hosting.repoPath(project, repo);
      const local = await listHeads(path);
      const missing: string[] = [];
      for (const [, sha] of heads) if (!(await hasCommit(path, sha))) missing.push(sha);
      if (missing.length) {
        // The writer of a ref has its objects; any other auth node may too.
        const sources = [...new Set([...writers, ...this.peers()])].filter((p) => p !== this.#self);
        let fetched = false;
        for (const peer of sources) {
          try {
            const { body } = await this.#d.rpc.call(peer, GIT_SERVICE, "bundle", {
              project,
              repo,
              tips: missing,
              have: [...local.values()],
            }, { timeoutMs: REPLICATE_TIMEOUT_MS });
            const chunks: Uint8Array[] = [];
            for await (const c of body ?? []) chunks.push(c);
            await unbundle(path, concatBytes(chunks));
            fetched = true;
            break;
          } catch (err) {
            this.#d.log(`git: fetching ${project}/${repo} from ${peer} failed: ${(err as Error).message}`);
          }
        }
        if (!fetched) complete = false;
      }
      // Forward only: a local head the store does not know yet is a push being replicated right now.
      const changed: Heads = [];
      for (const [branch, sha] of heads) {
        const mine = local.get(branch);
        if (mine === sha) continue;
        if (mine && await isAncestor(path, sha, mine)) continue;
        changed.push([branch, sha]);
      }
      if (changed.length) await this.#applyHeads(project, repo, changed);
    }
    return complete;
  }
}
