/** `tau dev` (the whole cloud on a laptop) and `tau serve` (a node on a server): the same node, other defaults. */
import type { Command } from "commander";
import { TauError } from "../runtime/errors.ts";
import { parseDuration, parseSize } from "../runtime/schema/units.ts";
import type { NodeOptions, TauNode } from "../services/node.ts";

interface NodeFlags {
  http: string;
  data: string;
  headerTimeout?: string;
  maxConnections?: string;
  maxPushSize?: string;
  root?: string;
  shape?: string;
}

export function registerCloudCommands(program: Command): void {
  const nodeOptions = (cmd: Command, http: string, data: string) =>
    cmd.option("--http <host:port>", "where to listen", http)
      .option("--data <dir>", "where everything is stored", data)
      .option("--header-timeout <duration>", "close connections that start no request for this long", "10s")
      .option("--max-connections <n>", "open connections at most (default 10000, less if ulimit -n is low)")
      .option("--max-push-size <size>", "largest git push the node accepts (default 256MB)");
  nodeOptions(
    program.command("dev")
      .description("run a whole local cloud in this process (auth, tns, patrick, monkey, hoarder, gateway, git)"),
    "127.0.0.1:8080",
    ".tau/dev",
  ).action(async (flags: NodeFlags) => {
    await runNode(nodeFlags(flags), "local cloud");
  });
  const serve = (name: string, description: string) =>
    nodeOptions(
      program.command(name).description(description)
        .option("--root <dir>", "a node folder written by tau config generate (with --shape)")
        .option("-s, --shape <name>", "the node's shape: runs <root>/config/<shape>.yaml"),
      "0.0.0.0:8080",
      ".tau/node",
    ).action(async (flags: NodeFlags) => {
      const opts = nodeFlags(flags);
      if (!flags.root && !flags.shape) return await runNode(opts, "node");
      if (!flags.root || !flags.shape) {
        throw new TauError(`${name} needs --root and --shape together`, {
          hint: `tau ${name} --root DIR --shape NAME (write them with tau config generate)`,
        });
      }
      const { readShapeConfig } = await import("../services/config/shape.ts");
      const shape = await readShapeConfig(flags.root, flags.shape);
      await runNode(
        { ...opts, http: `${shape.ip}:${shape.ports.http}`, dataDir: shape.dataDir, shape },
        `node ${shape.shape}`,
      );
    });
  serve("serve", "run a tau node on this machine");
  // Taubyte's spelling: `tau start -s SHAPE --root DIR`.
  serve("start", "run a tau node (the same as serve)");
}

function maxPushBytes(size: string | undefined): number | undefined {
  if (size === undefined) return undefined;
  try {
    const bytes = parseSize(size);
    if (bytes > 0) return bytes;
  } catch { /* said below */ }
  throw new TauError(`--max-push-size ${size} is not a size`, { hint: "for example --max-push-size 512MB" });
}

/** The flags as node options; exported for tests. */
export function nodeFlags(flags: NodeFlags): NodeOptions {
  let headerTimeoutMs: number | undefined;
  if (flags.headerTimeout !== undefined) {
    try {
      headerTimeoutMs = parseDuration(flags.headerTimeout);
    } catch (err) {
      throw new TauError(`--header-timeout ${(err as Error).message}`, { hint: "for example --header-timeout 10s" });
    }
    if (headerTimeoutMs < 1) throw new TauError("--header-timeout must be at least 1ms", { hint: "e.g. 10s" });
  }
  let maxConnections: number | undefined;
  if (flags.maxConnections !== undefined) {
    maxConnections = Number(flags.maxConnections);
    if (!Number.isInteger(maxConnections) || maxConnections < 1) {
      throw new TauError(`--max-connections ${flags.maxConnections} is not a positive whole number`, {
        hint: "for example --max-connections 10000",
      });
    }
  }
  return {
    dataDir: flags.data,
    http: flags.http,
    echoLogs: true,
    headerTimeoutMs,
    maxConnections,
    maxPushBytes: maxPushBytes(flags.maxPushSize),
  };
}

async function runNode(opts: NodeOptions, what: string): Promise<void> {
  // Loaded here, not at the top: every other command starts faster without the node's dependency graph. The specifier
  // is computed because deno loads whatever a literal import() names before the program starts (see main.ts).
  const { startNode } = await import(
    new URL("../services/node.ts", import.meta.url).href
  ) as typeof import("../services/node.ts");
  const node = await startNode(opts);
  const p2p = node.cluster ? `, p2p ${node.cluster.p2p.addresses()[0] ?? "(no address)"}` : "";
  console.log(
    `tau ${what} ready: gateway ${node.url} (set the Host header to a project's domain), ` +
      `git ${node.url}/git/<project>/{config,code}.git, api ${node.url}/api, ` +
      `websockets ${node.url.replace(/^http/, "ws").replace(/:\d+$/, `:${node.pubsub.port()}`)}, ` +
      `data ${node.dataDir}${p2p}`,
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
