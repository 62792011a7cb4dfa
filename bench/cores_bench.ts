/**
 * `deno task bench cores`: does serving scale over cores? The same SDK hello function served by one isolate and by
 * two (bench/cores_server.ts: Workers sharing a port with SO_REUSEPORT), alternating, with wrk on two threads; and
 * what the second isolate costs in memory (PSS). On this 2-core VM wrk shares the cores with the server, so the
 * ratio is a floor of what a machine with more cores gets.
 */
import { has, PAIRS, wrkOnce, type WrkResult } from "./wrk.ts";

async function pss(pid: number): Promise<number> {
  const text = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`).catch(() => "");
  return Number(text.match(/^Pss:\s+(\d+) kB/m)?.[1] ?? 0) / 1024;
}

async function start(workers: number, port: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-net",
      new URL("./cores_server.ts", import.meta.url).pathname,
      String(workers),
      String(port),
    ],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`cores server (${workers} workers) exited before it was ready`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return child;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

export async function runCoresBench(): Promise<void> {
  if (!(await has("wrk"))) {
    console.log("cores bench skipped: wrk is not installed (apt-get install wrk)");
    return;
  }
  const cores = navigator.hardwareConcurrency;
  const one = await start(1, 18321);
  const two = await start(2, 18322);
  try {
    const run = (port: number): Promise<WrkResult> =>
      wrkOnce(`http://127.0.0.1:${port}/`, undefined, {
        seconds: Number(Deno.env.get("BENCH_SECONDS") ?? 5),
        threads: 2,
      });
    await run(18321);
    await run(18322);
    const ratios: number[] = [];
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const r1 = await run(18321);
      const r2 = await run(18322);
      a.push(r1.rps);
      b.push(r2.rps);
      ratios.push(r2.rps / r1.rps);
    }
    await new Promise((r) => setTimeout(r, 2000));
    const m1 = await pss(one.pid);
    const m2 = await pss(two.pid);
    console.log(`\nserving isolates (SO_REUSEPORT workers), SDK hello, wrk -t2 -c64, ${cores} cores shared with wrk`);
    console.log(
      `1 isolate ${median(a).toFixed(0)} req/s, 2 isolates ${median(b).toFixed(0)} req/s: ratio ` +
        `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}, ` +
        `${ratios.length} pairs)`,
    );
    console.log(
      `memory (PSS): 1 isolate ${m1.toFixed(0)} MB, 2 isolates ${m2.toFixed(0)} MB: ` +
        `${(m2 - m1).toFixed(0)} MB per extra serving isolate`,
    );
  } finally {
    for (const c of [one, two]) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      await c.status;
    }
  }
}
