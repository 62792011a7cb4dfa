/**
 * patrick on a cloud: which node builds a project, and the live logs of builds running on another node.
 * The builder of a project is the first, by rendezvous hash of (project, peer), of the live nodes that run both
 * patrick and monkey (they need the repos too: git replicates to every auth and monkey node). Every node computes
 * the same order from the same directory, so a project has one builder; when it dies the next one takes over.
 */
import type { Directory } from "../p2p/directory.ts";
import type { Libp2pNode } from "../p2p/node.ts";
import { type RpcClient, serveRpc } from "../p2p/rpc.ts";
import { TauError } from "../../runtime/errors.ts";
import type { Job, Patrick, PatrickOptions } from "./jobs.ts";

export const PATRICK_SERVICE = "patrick";

async function score(project: string, peer: string): Promise<bigint> {
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${project}/${peer}`));
  return new DataView(hash).getBigUint64(0);
}

/** Rendezvous order is cached per (project, set of builders): computing it costs a hash per candidate. */
export class BuilderChoice {
  #cache = new Map<string, string | undefined>();
  constructor(private readonly directory: Directory, private readonly self: string) {}

  candidates(): string[] {
    return this.directory.peersFor("monkey").filter((e) => e.services.includes("patrick")).map((e) => e.peer).sort();
  }

  /** Synchronous for the scan loop: the first call for a new candidate set computes (and caches) the order. */
  builds(project: string): boolean {
    const key = `${project} ${this.candidates().join(",")}`;
    if (!this.#cache.has(key)) {
      // Filled asynchronously; until then this node does not claim the project (a scan 2 s later will).
      this.#cache.set(key, undefined);
      this.#rank(project).then((first) => {
        if (this.#cache.size > 4096) this.#cache.clear();
        this.#cache.set(key, first);
      });
      return false;
    }
    return this.#cache.get(key) === this.self;
  }

  async #rank(project: string): Promise<string | undefined> {
    const scored = await Promise.all(this.candidates().map(async (p) => [await score(project, p), p] as const));
    scored.sort((a, b) => (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0));
    return scored[0]?.[1];
  }
}

export function patrickClusterOptions(deps: {
  directory: Directory;
  rpc: RpcClient;
  self: string;
}): Pick<PatrickOptions, "builds" | "alive" | "remoteLog" | "nodeId"> {
  const choice = new BuilderChoice(deps.directory, deps.self);
  return {
    nodeId: deps.self,
    builds: (project) => choice.builds(project),
    alive: (node) => deps.directory.get(node)?.alive ?? false,
    async remoteLog(job: Job, follow: boolean) {
      const { body } = await deps.rpc.call(job.node!, PATRICK_SERVICE, "log", { id: job.id, follow }, {
        timeoutMs: 3_600_000,
      });
      const it = (body ?? (async function* () {})())[Symbol.asyncIterator]();
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { value, done } = await it.next();
          if (done) controller.close();
          else controller.enqueue(value);
        },
        async cancel() {
          await it.return?.();
        },
      });
    },
  };
}

/** On a patrick node: answer other nodes' requests for the live log of a build running here. */
export async function servePatrick(libp2p: Libp2pNode, patrick: Patrick): Promise<void> {
  await serveRpc(libp2p, PATRICK_SERVICE, (req) => {
    if (req.method !== "log") throw new TauError(`patrick has no method ${req.method}`, { status: 400 });
    const { id, follow } = req.params as { id: string; follow: boolean };
    const live = patrick.liveLog(id, follow);
    if (!live) throw new TauError(`build ${id} is not running on this node`, { status: 404 });
    return Promise.resolve({
      result: null,
      body: (async function* () {
        for await (const chunk of live) yield chunk;
      })(),
    });
  });
}
