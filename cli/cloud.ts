/** `tau dev` (the whole cloud on a laptop) and `tau serve` (a node on a server): the same node, other defaults. */
import type { Command } from "commander";
import type { TauNode } from "../services/node.ts";
import type { ShapeConfig } from "../services/config/shape.ts";
import { TauError } from "../runtime/errors.ts";
import { parseSize } from "../runtime/schema/units.ts";

const MAX_PUSH_HELP = "largest git push the node accepts (default 256MB)";

function maxPushBytes(size: string | undefined): number | undefined {
  if (size === undefined) return undefined;
  try {
    const bytes = parseSize(size);
    if (bytes > 0) return bytes;
  } catch { /* said below */ }
  throw new TauError(`--max-push-size ${size} is not a size`, { hint: "for example --max-push-size 512MB" });
}

export function registerCloudCommands(program: Command): void {
  program.command("dev")
    .description("run a whole local cloud in this process (auth, tns, patrick, monkey, hoarder, gateway, git)")
    .option("--http <host:port>", "where to listen", "127.0.0.1:8080")
    .option("--data <dir>", "where everything is stored", ".tau/dev")
    .option("--max-push-size <size>", MAX_PUSH_HELP)
    .action(async (opts: { http: string; data: string; maxPushSize?: string }) => {
      await runNode(opts.http, opts.data, "local cloud", maxPushBytes(opts.maxPushSize));
    });
  const serve = (name: string, description: string) =>
    program.command(name)
      .description(description)
      .option("--root <dir>", "a node folder written by tau config generate (with --shape)")
      .option("-s, --shape <name>", "the node's shape: runs <root>/config/<shape>.yaml")
      .option("--http <host:port>", "where to listen without --root", "0.0.0.0:8080")
      .option("--data <dir>", "where everything is stored without --root", ".tau/node")
      .option("--max-push-size <size>", MAX_PUSH_HELP)
      .action(async (opts: { root?: string; shape?: string; http: string; data: string; maxPushSize?: string }) => {
        const maxPush = maxPushBytes(opts.maxPushSize);
        if (!opts.root && !opts.shape) return await runNode(opts.http, opts.data, "node", maxPush);
        if (!opts.root || !opts.shape) {
          throw new TauError(`${name} needs --root and --shape together`, {
            hint: `tau ${name} --root DIR --shape NAME (write them with tau config generate)`,
          });
        }
        const { readShapeConfig } = await import("../services/config/shape.ts");
        const shape = await readShapeConfig(opts.root, opts.shape);
        await runNode(`${shape.ip}:${shape.ports.http}`, shape.dataDir, `node ${shape.shape}`, maxPush, shape);
      });
  serve("serve", "run a tau node on this machine");
  // Taubyte's spelling: `tau start -s SHAPE --root DIR`.
  serve("start", "run a tau node (the same as serve)");
}

async function runNode(http: string, data: string, what: string, maxPush?: number, shape?: ShapeConfig): Promise<void> {
  // Loaded here, not at the top: every other command starts faster without the node's dependency graph.
  const { startNode } = await import("../services/node.ts");
  const node = await startNode({ dataDir: data, http, echoLogs: true, maxPushBytes: maxPush, shape });
  const p2p = node.cluster ? `, p2p ${node.cluster.p2p.addresses()[0] ?? "(no address)"}` : "";
  console.log(
    `tau ${what} ready: gateway ${node.url} (set the Host header to a project's domain), ` +
      `git ${node.url}/git/<project>/{config,code}.git, api ${node.url}/api, data ${node.dataDir}${p2p}`,
  );
  await waitForSignal(node);
}

async function waitForSignal(node: TauNode): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
  console.log("tau: shutting down (again to force)");
  // Open long polls (tau logs -f) would hold a graceful shutdown forever: give it 5 s, or a second signal.
  const force = () => Deno.exit(130);
  Deno.addSignalListener("SIGINT", force);
  Deno.addSignalListener("SIGTERM", force);
  const timer = setTimeout(force, 5000);
  await node.close();
  clearTimeout(timer);
}
