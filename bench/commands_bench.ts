/**
 * `deno task bench commands`: a p2p command's round trip against an HTTP call to the same function (one module,
 * deployed twice: an HTTP trigger and a p2p trigger), on a 2-node cloud of `tau serve` processes: a full node
 * (127.0.0.114) and an edge that runs no functions (127.0.0.115, gateway only). Four ways in, each a sequential
 * client on one keep-alive connection:
 *   - one node: POST /echo on the full node's gateway; POST /api/projects/<p>/commands on the full node's API;
 *   - two nodes: the same two on the edge, which forwards the HTTP request (/tau/http/1.0.0) and sends the
 *     command (/tau/command/1.0.0) to the full node, whose function answers.
 * Rounds interleave the four; each figure is the median of the rounds' medians with the spread of those medians,
 * and the per-round ratio command/HTTP likewise.
 */
import { join } from "node:path";
import { keepAliveLatencies } from "./keepalive.ts";
import { commitAndPush, tau, waitForBuild } from "../tests/helpers/cloud.ts";
import { eventually, startTestCloud, type TestNode } from "../tests/helpers/cluster.ts";
import { median, spread } from "./pairs.ts";

const HOST = "cmds.bench.test";
const ROUNDS = Number(Deno.env.get("BENCH_PAIRS") ?? 7);
const PER_ROUND = 200;

const ECHO = `import { Request, Response } from "tau-sdk";

export function echo(): void {
  new Response().sendBytes(new Request().bodyBytes());
}
`;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

/** Sequential POSTs of `body` over one keep-alive connection; each request's latency in ms. */
function latencies(node: TestNode, host: string, target: string, body: string, n: number): Promise<number[]> {
  return keepAliveLatencies(
    { hostname: node.spec.ip, port: node.ports.http },
    `POST ${target} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    n,
    (text) => {
      if (!text.startsWith("HTTP/1.1 200") || !text.endsWith(body)) {
        throw new Error(`${target}: ${text.split("\r\n")[0]} ${text.slice(text.indexOf("\r\n\r\n") + 4, 300)}`);
      }
    },
  );
}

async function inProject(dir: string, args: string[]) {
  const r = await tau(args, { cwd: dir });
  if (r.code !== 0) throw new Error(`tau ${args.join(" ")}: ${r.stderr}`);
}

export async function runCommandsBench(): Promise<void> {
  const cluster = await startTestCloud([
    { shape: "all", ip: "127.0.0.114" },
    { shape: "edge", ip: "127.0.0.115", services: "gateway" },
  ], { cloud: "commands.bench" });
  const [full, edge] = cluster.nodes;
  const work = await Deno.makeTempDir({ prefix: "tau-bench-commands-" });
  try {
    await cluster.waitMesh();
    await inProject(work, ["new", "project", "benchcmds", "--cloud", full.url]);
    const dir = join(work, "benchcmds");
    await inProject(dir, ["new", "domain", "web", "--fqdn", HOST]);
    await inProject(dir, ["new", "function", "echo", "--paths", "/echo", "--method", "POST"]);
    await Deno.writeTextFile(join(dir, "code/functions/echo/index.ts"), ECHO);
    // The same code as a p2p function: `source` is the function's folder, so give it its own copy (same CID).
    await Deno.mkdir(join(dir, "code/functions/echop2p"), { recursive: true });
    await Deno.writeTextFile(join(dir, "code/functions/echop2p/index.ts"), ECHO);
    await Deno.mkdir(join(dir, "config/services"), { recursive: true });
    await Deno.writeTextFile(join(dir, "config/services/echo.yaml"), "protocol: /echo/v1\n");
    await Deno.writeTextFile(
      join(dir, "config/functions/echop2p.yaml"),
      "trigger:\n  type: p2p\n  protocol: /echo/v1\n  command: echo\nexecution:\n  timeout: 10s\n  memory: 16MB\n" +
        "  call: echo\n",
    );
    await waitForBuild(full.url, "benchcmds", await commitAndPush(join(dir, "code"), "echo"));
    const job = await waitForBuild(full.url, "benchcmds", await commitAndPush(join(dir, "config"), "echo twice"));
    if (job.status !== "success") throw new Error(`build failed: ${job.error}`);

    const apiOf = (n: TestNode) => `${n.spec.ip}:${n.ports.http}`;
    const command = "/api/projects/benchcmds/commands?protocol=/echo/v1&command=echo";
    const ways = {
      httpOne: () => latencies(full, HOST, "/echo", "ping", PER_ROUND),
      commandOne: () => latencies(full, apiOf(full), command, "ping", PER_ROUND),
      httpTwo: () => latencies(edge, HOST, "/echo", "ping", PER_ROUND),
      commandTwo: () => latencies(edge, apiOf(edge), command, "ping", PER_ROUND),
    };
    type Way = keyof typeof ways;
    // Warm: every path served once (the edge learns the deployment by replication), then one unrecorded round.
    await eventually(
      async () => (await ways.commandTwo().then(() => true, () => false)),
      "the edge sends commands",
      30_000,
    );
    await eventually(async () => (await ways.httpTwo().then(() => true, () => false)), "the edge forwards", 30_000);
    for (const f of Object.values(ways)) await f();
    const rounds = Object.fromEntries(
      Object.keys(ways).map((k) => [k, { p50: [] as number[], p99: [] as number[] }]),
    ) as Record<Way, { p50: number[]; p99: number[] }>;
    const ratios = { one: [] as number[], two: [] as number[] };
    for (let i = 0; i < ROUNDS; i++) {
      const got: Partial<Record<Way, number>> = {};
      for (const [name, f] of Object.entries(ways) as [Way, () => Promise<number[]>][]) {
        const xs = await f();
        rounds[name].p50.push(pct(xs, 0.5));
        rounds[name].p99.push(pct(xs, 0.99));
        got[name] = pct(xs, 0.5);
      }
      ratios.one.push(got.commandOne! / got.httpOne!);
      ratios.two.push(got.commandTwo! / got.httpTwo!);
    }
    const line = (label: string, name: Way) =>
      `${label.padEnd(48)} p50 ${spread(rounds[name].p50, 3)} ms  p99 ${spread(rounds[name].p99, 3)} ms`;
    console.log(
      `\np2p commands vs HTTP to the same function (${ROUNDS} interleaved rounds of ${PER_ROUND} sequential calls, ` +
        "one keep-alive connection each)",
    );
    console.log(line("one node: HTTP POST /echo (gateway)", "httpOne"));
    console.log(line("one node: command (API, answered on the node)", "commandOne"));
    console.log(line("two nodes: HTTP POST /echo (the edge forwards)", "httpTwo"));
    console.log(line("two nodes: command (API on the edge)", "commandTwo"));
    console.log(`${"ratio command/HTTP, p50, one node".padEnd(48)} ${spread(ratios.one, 2)}`);
    console.log(`${"ratio command/HTTP, p50, two nodes".padEnd(48)} ${spread(ratios.two, 2)}`);
    const hop = (two: Way, one: Way) => (median(rounds[two].p50) - median(rounds[one].p50)).toFixed(3);
    console.log(
      `${"the hop (two nodes minus one), p50".padEnd(48)} HTTP ${hop("httpTwo", "httpOne")} ms, command ${
        hop("commandTwo", "commandOne")
      } ms`,
    );
  } finally {
    await cluster.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runCommandsBench();
