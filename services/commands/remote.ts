/**
 * Commands across nodes: one RPC service, `command` (/tau/command/1.0.0, services/p2p/rpc.ts), served by every
 * node that runs substrate. A call carries the command whole in its head and the answer whole in its result (both
 * bounded by MAX_COMMAND_BYTES, under rpc.ts's frame cap); the caller is the peer noise authenticated, never a
 * field of the message, so `local: true` and `from` cannot be forged. Loaded only on a cloud (`tau dev` has no
 * libp2p).
 */
import { TauError } from "../../runtime/errors.ts";
import type { Directory } from "../p2p/directory.ts";
import type { Libp2pNode } from "../p2p/node.ts";
import { type RpcClient, serveRpc } from "../p2p/rpc.ts";
import type { CommandMessage, Commands, RemoteCommands } from "./commands.ts";

export const COMMAND_SERVICE = "command";

export function remoteCommands(rpc: RpcClient, directory: Directory, self: string): RemoteCommands {
  return {
    substratePeers: () => directory.peersFor("substrate").map((e) => e.peer).filter((p) => p !== self),
    async call(peer, msg, timeoutMs) {
      const { result } = await rpc.call(peer, COMMAND_SERVICE, "send", msg, { timeoutMs });
      const answer = (result as { answer?: unknown } | null)?.answer;
      if (!(answer instanceof Uint8Array)) {
        throw new TauError(`peer ${peer} answered a command with no data`, { status: 500 });
      }
      return answer;
    },
  };
}

/** On a substrate node: answer commands other nodes send. */
export async function serveCommands(libp2p: Libp2pNode, commands: Commands): Promise<void> {
  await serveRpc(libp2p, COMMAND_SERVICE, async (call) => {
    if (call.method !== "send") throw new TauError(`command has no method ${call.method}`, { status: 400 });
    const p = call.params as Partial<CommandMessage> | null;
    if (
      typeof p?.project !== "string" || typeof p.protocol !== "string" || typeof p.command !== "string" ||
      !(p.data instanceof Uint8Array)
    ) {
      throw new TauError("a command needs project, protocol, command and data", { status: 400 });
    }
    const msg = { project: p.project, protocol: p.protocol, command: p.command, data: p.data };
    const answer = await commands.answerHere(msg, call.peer, call.peer !== commands.self);
    return { result: { answer } };
  });
}
