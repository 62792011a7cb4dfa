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
import { rendezvous } from "../cluster/rendezvous.ts";

export const PATRICK_SERVICE = "patrick";

export class BuilderChoice {
  constructor(private readonly directory: Directory, private readonly self: string) {}

  candidates(): string[] {
    return this.directory.peersFor("monkey").filter((e) => e.services.includes("patrick")).map((e) => e.peer);
  }

  /** The node that builds `project` now: the highest score among the live candidates. */
  builderOf(project: string): string | undefined {
    return rendezvous(project, this.candidates());
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
