/**
 * Memory of a `tau dev` node at rest (`deno task bench memory`), against a raw Deno.serve hello world measured in the
 * same run (the floor: what any Deno process serving HTTP holds). Three moments, each once the node has settled:
 *   (a) right after start;
 *   (b) after a push that builds an AssemblyScript function, once the build helpers have retired (their idle period
 *       is shortened to HELPER_IDLE_MS here through TAU_WORKER_IDLE_MS; the default is 120 s);
 *   (c) after serving requests: the function, a website file and a function that outgrows the inline budget (which
 *       runs on an executor Worker).
 * For each: PSS of the node and all its descendants (the goal: < 120 MB), the node alone (PSS, private, RSS), each
 * child process by role, the Workers inside the node and its main isolate's V8 heap (GET /api/memory). PSS splits
 * shared pages (the deno binary's code) among the processes that map them, so it moves a little with what else runs
 * on the machine; private memory does not. Also printed: the cold paths this leanness costs (start, first build,
 * first request, first executor call).
 */
import { join } from "node:path";
import { memoryTree, mib, type ProcessMemory } from "../runtime/memory.ts";
import type { NodeMemory } from "../services/node_memory.ts";
import { type Cloud, commitAndPush, hostRequest, startCloud, tau, waitForBuild } from "../tests/helpers/cloud.ts";

const HOST = "memory.localtau";
const GOAL_BYTES = 120 << 20;
/** The build helpers' idle period in this bench (TAU_WORKER_IDLE_MS), so that (b) need not wait 120 s. */
const HELPER_IDLE_MS = 2_000;
/** How often the node looks for a quiet moment to give freed memory back (TAU_TRIM_CHECK_MS; default 15 s). */
const TRIM_CHECK_MS = 1_000;
const REQUESTS = Number(Deno.env.get("MEMORY_REQUESTS") ?? 2_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until the tree's PSS moves by less than 1 MB over a second: timers, GC and lazy work done. */
async function settled(pid: number): Promise<void> {
  let last = -1;
  for (let i = 0; i < 30; i++) {
    await sleep(1000);
    const now = (await memoryTree(pid))?.totalPssBytes ?? 0;
    if (last >= 0 && Math.abs(now - last) < 1 << 20) return;
    last = now;
  }
}

async function waitForHelpersToRetire(pid: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < 600; i++) {
    const tree = await memoryTree(pid);
    if (!tree?.children.some((c) => c.kind.startsWith("helper"))) break;
    await sleep(100);
  }
  return performance.now() - start;
}

const memoryOf = async (cloud: Cloud) => await (await fetch(`${cloud.url}/api/memory`)).json() as NodeMemory;

/**
 * At rest: the node has had its quiet moments after the work (three trim checks: runtime/idle_trim.ts gives freed
 * memory back in the first quiet one), and its PSS holds still.
 */
async function report(label: string, cloud: Cloud): Promise<number> {
  await sleep(3 * TRIM_CHECK_MS);
  await settled(cloud.pid);
  const tree = await memoryTree(cloud.pid);
  if (!tree) throw new Error(`node ${cloud.pid} is gone`);
  const inside = await memoryOf(cloud);
  const total = tree.totalPssBytes;
  console.log(
    `${label.padEnd(40)} total ${mib(total).padStart(9)} PSS  ${
      total < GOAL_BYTES ? "(goal < 120 MB: met)" : "(goal < 120 MB: NOT met)"
    }`,
  );
  const s = tree.self;
  console.log(
    `  node process alone                     ${mib(s.pssBytes).padStart(9)} PSS, private ${mib(s.privateBytes)}, RSS ${
      mib(s.rssBytes)
    }`,
  );
  console.log(
    `    main isolate V8 heap                 ${mib(inside.heap.usedBytes).padStart(9)} used of ${
      mib(inside.heap.totalBytes)
    }, external ${mib(inside.heap.externalBytes)}`,
  );
  const w = inside.workers;
  console.log(
    `    workers in the node                  watchdog ${w.watchdog ? "yes" : "no"}, executors ${w.executors}` +
      `; freed memory given back ${inside.trims} time${inside.trims === 1 ? "" : "s"} so far`,
  );
  const byKind = new Map<string, ProcessMemory[]>();
  for (const c of tree.children) byKind.set(c.kind, [...byKind.get(c.kind) ?? [], c]);
  if (byKind.size === 0) console.log("  child processes                        none");
  for (const [kind, list] of byKind) {
    const sum = list.reduce((a, c) => a + c.pssBytes, 0);
    console.log(`  ${`${kind} x${list.length}`.padEnd(38)} ${mib(sum).padStart(9)} PSS`);
  }
  return total;
}

/** PSS of a raw Deno.serve hello world after it has served a few requests: the floor of any Deno server. */
async function rawBaseline(): Promise<ProcessMemory> {
  const raw = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./raw_server.ts", import.meta.url).pathname, "18310"],
    stdout: "piped",
  }).spawn();
  try {
    const reader = raw.stdout.getReader();
    await reader.read();
    reader.releaseLock();
    for (let i = 0; i < 50; i++) await (await fetch("http://127.0.0.1:18310/")).text();
    await settled(raw.pid);
    return (await memoryTree(raw.pid, "raw"))!.self;
  } finally {
    raw.kill("SIGTERM");
    await raw.status;
  }
}

/** bench/memory_parts.ts in a fresh process: each service's modules and each Worker, by the private memory added. */
async function parts(): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", new URL("./memory_parts.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`bench/memory_parts.ts failed (${out.code})`);
  const { parts, latency } = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    parts: { part: string; privateBytes: number; heapUsedBytes: number }[];
    latency: Record<"workerConstructMs" | "coldCallMs" | "warmCallMs", number[]>;
  };
  console.log("each service's share, loaded in turn in a fresh process (private memory added, of it V8 heap):");
  for (const r of parts) {
    console.log(`  ${r.part.padEnd(72)} ${mib(r.privateBytes).padStart(9)}  heap ${mib(r.heapUsedBytes).padStart(8)}`);
  }
  const spread = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `median ${s[s.length >> 1].toFixed(1)} ms (${s[0].toFixed(1)}-${s[s.length - 1].toFixed(1)})`;
  };
  console.log(
    `what starting Workers late costs (5 runs): constructing a Worker holds its thread ${
      spread(latency.workerConstructMs)
    }; a first executor call with no worker booted ${spread(latency.coldCallMs)}, with one booted ahead ${
      spread(latency.warmCallMs)
    }`,
  );
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const v = await f();
  return [v, performance.now() - t];
}

export async function runMemoryBench(): Promise<void> {
  if (!(await Deno.stat("/proc/self/smaps_rollup").catch(() => undefined))) {
    console.log("memory bench skipped: it reads Linux's /proc/<pid>/smaps_rollup");
    return;
  }
  const work = await Deno.makeTempDir({ prefix: "tau-bench-memory-" });
  try {
    const raw = await rawBaseline();
    console.log(
      `\nmemory of a tau dev node at rest (helpers retire after ${HELPER_IDLE_MS} ms here)\n` +
        `raw Deno.serve hello world (baseline)   ${mib(raw.pssBytes).padStart(9)} PSS, private ${
          mib(raw.privateBytes)
        }, RSS ${mib(raw.rssBytes)}`,
    );
    const [cloud, startMs] = await timed(() =>
      startCloud(join(work, "data"), {
        env: { TAU_WORKER_IDLE_MS: String(HELPER_IDLE_MS), TAU_TRIM_CHECK_MS: String(TRIM_CHECK_MS) },
      })
    );
    try {
      const a = await report("(a) after start", cloud);
      await parts();

      const project = join(work, "mem");
      const run = async (args: string[], cwd: string) => {
        const r = await tau(args, { cwd });
        if (r.code !== 0) throw new Error(`tau ${args.join(" ")}: ${r.stderr}`);
      };
      await run(["new", "project", "mem", "--cloud", cloud.url], work);
      await run(["new", "domain", "mem", "--fqdn", HOST], project);
      await run(["new", "function", "hello", "--domains", "mem", "--paths", "/sdk"], project);
      await run(["new", "function", "spin", "--domains", "mem", "--paths", "/spin"], project);
      await run(["new", "website", "site", "--domains", "mem", "--paths", "/"], project);
      const code = join(project, "code");
      await Deno.writeTextFile(
        join(code, "functions/spin/index.ts"),
        // Outgrows the 10 ms inline budget, so it is re-run on an executor Worker.
        `import { Response } from "tau-sdk";\nexport function spin(): void {\n  let x: i64 = 0;\n` +
          `  for (let i: i64 = 0; i < 200000000; i++) x += i ^ (x >> 3);\n` +
          `  new Response().send("spun " + x.toString());\n}\n`,
      );
      await Deno.writeTextFile(join(code, "websites/site/file4k.txt"), "x".repeat(4096));
      const [, buildMs] = await timed(async () => {
        await waitForBuild(cloud.url, "mem", await commitAndPush(code, "code"));
        const job = await waitForBuild(cloud.url, "mem", await commitAndPush(join(project, "config"), "config"));
        if (job.status !== "success") throw new Error(`the bench's build failed: ${job.error}`);
      });
      const retireMs = await waitForHelpersToRetire(cloud.pid);
      const b = await report("(b) after a build, helpers retired", cloud);

      const [first, firstMs] = await timed(() => hostRequest(cloud.port, HOST, "/sdk"));
      if (first.status !== 200) throw new Error(`/sdk answered ${first.status}: ${first.text}`);
      const [, warmMs] = await timed(() => hostRequest(cloud.port, HOST, "/sdk"));
      const [spun, spinMs] = await timed(() => hostRequest(cloud.port, HOST, "/spin"));
      if (spun.status !== 200) throw new Error(`/spin answered ${spun.status}: ${spun.text}`);
      const [, spinAgainMs] = await timed(() => hostRequest(cloud.port, HOST, "/spin"));
      for (let i = 0; i < REQUESTS; i++) {
        const path = i % 2 ? "/sdk" : "/file4k.txt";
        const r = await hostRequest(cloud.port, HOST, path);
        if (r.status !== 200) throw new Error(`${path} answered ${r.status}`);
      }
      const c = await report(`(c) after ${REQUESTS + 4} requests`, cloud);

      console.log(
        `goal: idle PSS < 120 MB: (a) ${mib(a)}, (b) ${mib(b)}, (c) ${mib(c)}: ${
          Math.max(a, b, c) < GOAL_BYTES ? "met" : "NOT met"
        }`,
      );
      console.log(
        `cold paths: start to ready ${startMs.toFixed(0)} ms; first push to built ${buildMs.toFixed(0)} ms ` +
          `(helpers retired ${(retireMs / 1000).toFixed(1)} s later); first /sdk ${firstMs.toFixed(1)} ms ` +
          `(next ${warmMs.toFixed(1)} ms); first executor call /spin ${spinMs.toFixed(0)} ms (next ${
            spinAgainMs.toFixed(0)
          } ms)`,
      );
    } finally {
      await cloud.stop();
    }
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
