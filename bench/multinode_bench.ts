/**
 * Multi-node figures, each against a baseline from the same run (a 3-node cloud of `tau serve` processes on
 * 127.0.0.11-.13: two full nodes and one gateway-only node that forwards):
 *   - a request through the forwarding gateway vs the same request served locally: one keep-alive connection,
 *     interleaved rounds (local, forwarded, local, forwarded...), p50/p99 per side, medians over rounds;
 *   - the same under wrk (requests/s ratio), when wrk is installed;
 *   - build finished on node 1 -> first 200 with the new version on node 2;
 *   - idle PSS of each node and of the cloud, 20 s after the last request (build workers retired after 15 s).
 */
import { join } from "node:path";
import { keepAliveLatencies } from "./keepalive.ts";
import { commitAndPush, hostRequest, tau, waitForBuild } from "../tests/helpers/cloud.ts";
import { eventually, startTestCloud, type TestNode } from "../tests/helpers/cluster.ts";
import { has, wrkOnce } from "./wrk.ts";

const HOST = "bench.multi.test";
const ROUNDS = 7;
const PER_ROUND = 300;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}
const median = (xs: number[]) => pct(xs, 0.5);

/** Sequential GETs of /ping over one keep-alive connection; per-request latency in ms. */
function latencies(node: TestNode, n: number): Promise<number[]> {
  return keepAliveLatencies(
    { hostname: node.spec.ip, port: node.ports.http },
    `GET /ping HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
    n,
    (text) => {
      if (!text.startsWith("HTTP/1.1 200")) throw new Error(`${node.spec.ip}: ${text.split("\r\n")[0]}`);
    },
  );
}

/** PSS of a node with its child processes (helpers, git): what the node costs the machine. */
async function pss(pid: number): Promise<number> {
  const text = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`).catch(() => "");
  const kb = Number(text.match(/^Pss:\s+(\d+) kB/m)?.[1] ?? 0);
  let children: number[] = [];
  for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
    const list = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/children`).catch(() => "");
    children = children.concat(list.split(" ").filter((s) => s.trim()).map(Number));
  }
  let sum = kb * 1024;
  for (const child of children) sum += await pss(child);
  return sum;
}

const mb = (b: number) => `${(b / (1 << 20)).toFixed(0)} MB`;

export async function runMultinodeBench(): Promise<void> {
  // The build and config-parse workers retire after 15 s idle here (default 120 s), so the idle figure below,
  // 20 s after the last build, is the node at rest rather than the node right after a build.
  Deno.env.set("TAU_WORKER_IDLE_MS", "15000");
  const cluster = await startTestCloud([
    { shape: "all", ip: "127.0.0.11" },
    { shape: "all", ip: "127.0.0.12" },
    { shape: "edge", ip: "127.0.0.13", services: "gateway" },
  ]);
  const [n1, n2, n3] = cluster.nodes;
  const work = await Deno.makeTempDir({ prefix: "tau-bench-multi-" });
  try {
    await cluster.waitMesh();
    const r = await tau(["new", "project", "benchmulti", "--cloud", n1.url], { cwd: work });
    if (r.code !== 0) throw new Error(r.stderr);
    const project = join(work, "benchmulti");
    for (
      const args of [
        ["new", "domain", "bench", "--fqdn", HOST],
        ["new", "function", "ping", "--domains", "bench", "--paths", "/ping"],
      ]
    ) {
      const s = await tau(args, { cwd: project });
      if (s.code !== 0) throw new Error(s.stderr);
    }
    await commitAndPush(join(project, "code"), "code");
    const commit = await commitAndPush(join(project, "config"), "config");
    await waitForBuild(n1.url, "benchmulti", commit);
    for (const n of [n2, n3]) {
      await eventually(
        async () => (await hostRequest(n.ports.http, HOST, "/ping", {}, n.spec.ip)).status === 200,
        n.spec.ip,
      );
    }

    // (1) forwarding vs local, one connection, interleaved rounds.
    await latencies(n2, 200);
    await latencies(n3, 200);
    const local: number[][] = [], forwarded: number[][] = [];
    for (let i = 0; i < ROUNDS; i++) {
      local.push(await latencies(n2, PER_ROUND));
      forwarded.push(await latencies(n3, PER_ROUND));
    }
    const l50 = median(local.map((x) => pct(x, 0.5))), f50 = median(forwarded.map((x) => pct(x, 0.5)));
    const l99 = median(local.map((x) => pct(x, 0.99))), f99 = median(forwarded.map((x) => pct(x, 0.99)));
    const spread = forwarded.map((x, i) => pct(x, 0.5) - pct(local[i], 0.5)).sort((a, b) => a - b);
    console.log(
      `forwarding: local p50 ${l50.toFixed(3)} ms p99 ${l99.toFixed(2)} ms; forwarded p50 ${f50.toFixed(3)} ms ` +
        `p99 ${f99.toFixed(2)} ms; added p50 ${(f50 - l50).toFixed(3)} ms (rounds: ${
          spread.map((d) => d.toFixed(3)).join(" ")
        }; goal <= 0.5 ms)`,
    );

    // (2) throughput under wrk, interleaved.
    if (await has("wrk")) {
      const lr: number[] = [], fr: number[] = [];
      for (let i = 0; i < 3; i++) {
        lr.push((await wrkOnce(`${n2.url}/ping`, HOST, { seconds: 3 })).rps);
        fr.push((await wrkOnce(`${n3.url}/ping`, HOST, { seconds: 3 })).rps);
      }
      console.log(
        `forwarding under wrk: local ${median(lr).toFixed(0)} req/s, forwarded ${median(fr).toFixed(0)} req/s, ` +
          `ratio ${(median(fr) / median(lr)).toFixed(2)}`,
      );
    }

    // (3) build finished on node 1 -> first 200 of the new version on node 2.
    const waits: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const file = join(project, "code", "functions", "ping", "index.ts");
      const src = await Deno.readTextFile(file);
      await Deno.writeTextFile(file, src.replace(/(hello from ping)( v\d+)?/, `$1 v${i}`));
      const c = await commitAndPush(join(project, "code"), `v${i}`);
      const job = await waitForBuild(n1.url, "benchmulti", c);
      const finished = performance.now();
      await eventually(
        async () => (await hostRequest(n2.ports.http, HOST, "/ping", {}, n2.spec.ip)).text.includes(` v${i}`),
        "v",
      );
      waits.push(performance.now() - finished);
      if (job.status !== "success") throw new Error(`build ${i} failed`);
    }
    console.log(
      `build finished on node 1 -> first 200 on node 2: median ${median(waits).toFixed(0)} ms (${
        waits.map((w) => w.toFixed(0)).join(", ")
      }; goal <= 1000 ms; includes the poll interval of 200 ms)`,
    );

    // (4) idle PSS.
    await new Promise((r) => setTimeout(r, 20_000));
    const sizes = await Promise.all(cluster.nodes.map((n) => pss(n.pid!)));
    console.log(
      `idle PSS: ${cluster.nodes.map((n, i) => `${n.spec.shape}@${n.spec.ip} ${mb(sizes[i])}`).join(", ")}; cloud ${
        mb(sizes.reduce((a, b) => a + b, 0))
      } (goal: 3 nodes under 300 MB; 20 s after the last build, build workers retired after 15 s idle)`,
    );
  } finally {
    await cluster.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runMultinodeBench();
