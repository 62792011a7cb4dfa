/** `tau call <project> <protocol> <command> [--data D]`: send a p2p command and print the answer's bytes. */
import type { Command } from "commander";
import { TauError } from "../runtime/errors.ts";
import { cloudUrl, request } from "./client.ts";

/** The data `--data` names: the text itself, or stdin read to its end for `-`. */
async function commandData(data: string | undefined): Promise<Uint8Array> {
  if (data === undefined) return new Uint8Array(0);
  if (data !== "-") return new TextEncoder().encode(data);
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

/** Sends the command through the node's API; resolves with the answer's bytes. */
export async function callCommand(
  cloud: string,
  project: string,
  protocol: string,
  command: string,
  opts: { data?: Uint8Array; to?: string } = {},
): Promise<Uint8Array> {
  if (!protocol.startsWith("/")) {
    throw new TauError(`protocol '${protocol}' must start with "/"`, { hint: `for example /${protocol}` });
  }
  const query = new URLSearchParams({ protocol, command });
  if (opts.to) query.set("to", opts.to);
  const res = await request(cloud, `/projects/${encodeURIComponent(project)}/commands?${query}`, {
    method: "POST",
    body: (opts.data ?? new Uint8Array(0)) as BodyInit,
    headers: { "content-type": "application/octet-stream" },
  });
  return new Uint8Array(await res.arrayBuffer());
}

export function registerCallCommands(program: Command): void {
  program.command("call <project> <protocol> <command>")
    .description("send a p2p command to the function of <project> that answers it; prints the answer")
    .option("--data <data>", "the command's data; - reads it from stdin")
    .option("--to <peer>", "the node (peer id, see tau nodes) that must answer")
    .option("--cloud <url>", "the cloud's API (default $TAU_CLOUD or http://127.0.0.1:8080)")
    .action(
      async (project: string, protocol: string, command: string, o: { data?: string; to?: string; cloud?: string }) => {
        const answer = await callCommand(cloudUrl(o.cloud), project, protocol, command, {
          data: await commandData(o.data),
          to: o.to,
        });
        let at = 0;
        while (at < answer.length) at += await Deno.stdout.write(answer.subarray(at));
      },
    );
}
