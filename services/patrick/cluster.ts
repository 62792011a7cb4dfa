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

/** A 53-bit hash of the pair (cyrb53): synchronous, so the scan loop and event handlers decide at once. */
function score(project: string, peer: string): number {
  const str = `${project}/${peer}`;
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export class BuilderChoice {
  constructor(private readonly directory: Directory, private readonly self: string) {}

  candidates(): string[] {
    return this.directory.peersFor("monkey").filter((e) => e.services.includes("patrick")).map((e) => e.peer);
  }

  /** The node that builds `project` now: the highest score among the live candidates. */
  builderOf(project: string): string | undefined {
    let best: string | undefined, bestScore = -1;
    for (const peer of this.candidates()) {
      const sc = score(project, peer);
      if (sc > bestScore || (sc === bestScore && peer < best!)) [best, bestScore] = [peer, sc];
    }
    return best;
  }

  builds(project: string): boolean {
    return this.builderOf(project) === this.self;
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
