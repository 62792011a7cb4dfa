/**
 * Gateway benchmarks, all against a raw Deno.serve hello world measured in the same run on the same machine:
 * (a) an SDK hello function, (b) a WAGI hello function (C, WASI), (c) a 4 KB website file, each through a real
 * local cloud (git push, build, TNS, gateway) under wrk. Also: push -> live for an AssemblyScript function, and cold
 * start (first request after deploy) of a ~100 KB module.
 * Server pinned to core 0 and wrk to core 1 when taskset exists, as in the platform notes.
 */
import { join } from "node:path";
import { compileAssemblyScript, prepareModule } from "../runtime/wasm/mod.ts";
import { commitAndPush, hostRequest, sh, startCloud, tau, waitForBuild } from "../tests/helpers/cloud.ts";
import { CONNECTIONS, has, interleaved, pairedLine, pin, SECONDS } from "./wrk.ts";

const HOST = "bench.localtau";
/** Enough functions for a ~100 KB prepared module. */
const BIG_FUNCTIONS = 1150;
/** Cold starts measured, each after its own deploy of a changed big module. */
const COLD_SAMPLES = 3;

/** A ~100 KB AssemblyScript module of real code (hundreds of functions all on the call path). */
function bigModuleSource(functions: number, version: number): string {
  let src = `import { Request, Response } from "tau-sdk";\n`;
  for (let i = 0; i < functions; i++) {
    src += `@inline(never) function f${i}(x: i32): i32 { let y = x * ${i + 3} + ${i * 7};` +
      ` if (y > ${i}) y ^= ${i * 13 + 1}; for (let k = 0; k < (x & 3); k++) y += k * ${i + 1};` +
      ` return y + <i32>(y % ${i + 2}); }\n`;
  }
  src += "export function big(): void {\n  let acc = new Request().path.length;\n";
  for (let i = 0; i < functions; i++) src += `  acc = f${i}(acc);\n`;
  src += `  new Response().send("big ${version} " + acc.toString());\n}\n`;
  return src;
}

export async function runGatewayBench(): Promise<void> {
  if (!(await has("wrk"))) {
    console.log("gateway bench skipped: wrk is not installed (apt-get install wrk)");
    return;
  }
  const pinned = await has("taskset");
  const work = await Deno.makeTempDir({ prefix: "tau-bench-" });
  const children: Deno.ChildProcess[] = [];
  try {
    // A raw server on core 0 (the node's core), up until it says it is ready.
    const startRaw = async (...args: string[]) => {
      const cmd = [Deno.execPath(), "run", "-A", new URL("./raw_server.ts", import.meta.url).pathname, ...args];
      const child = new Deno.Command(pinned ? "taskset" : cmd[0], {
        args: pinned ? pin(cmd, 0).slice(1) : cmd.slice(1),
        stdout: "piped",
      }).spawn();
      children.push(child);
      const reader = child.stdout.getReader();
      await reader.read();
      reader.releaseLock();
    };
    // The baseline runs for the whole bench, on the same core as the node: every figure alternates between the two.
    await startRaw("18300");
    const base = { url: "http://127.0.0.1:18300/" };
    // The reference: tau's own answers from a raw Deno.serve that reads its request (the floor in this Deno).
    await startRaw("18301", "same");
    const ref = (path: string) => ({ url: `http://127.0.0.1:18301${path}` });

    const cloud = await startCloud(join(work, "data"));
    if (pinned) await new Deno.Command("sh", { args: ["-c", `taskset -a -p -c 0 ${cloud.pid} >/dev/null`] }).output();
    try {
      const project = join(work, "bench");
      const run = async (args: string[]) => {
        const r = await tau([...args, "--cloud", cloud.url], { cwd: work });
        if (r.code !== 0) throw new Error(`tau ${args.join(" ")}: ${r.stderr}`);
      };
      await run(["new", "project", "bench"]);
      const inProject = async (args: string[]) => {
        const r = await tau(args, { cwd: project });
        if (r.code !== 0) throw new Error(`tau ${args.join(" ")}: ${r.stderr}`);
      };
      await inProject(["new", "domain", "bench", "--fqdn", HOST]);
      await inProject(["new", "function", "hello", "--domains", "bench", "--paths", "/sdk"]);
      await inProject(["new", "function", "wagi", "--domains", "bench", "--paths", "/wagi", "--template", "wasm"]);
      await inProject(["new", "function", "big", "--domains", "bench", "--paths", "/big"]);
      await inProject(["new", "website", "site", "--domains", "bench", "--paths", "/"]);
      const code = join(project, "code");
      const hello = (v: string) =>
        `import { Response } from "tau-sdk";\nexport function hello(): void {\n` +
        `  new Response().header("content-type", "text/plain").send("hello ${v}");\n}\n`;
      await Deno.writeTextFile(join(code, "functions/hello/index.ts"), hello("v0"));
      await Deno.copyFile(
        new URL("../tests/fixtures/wagi/hello.wasm", import.meta.url).pathname,
        join(code, "functions/wagi/hello.wasm"),
      );
      await Deno.writeTextFile(join(code, "functions/big/index.ts"), bigModuleSource(BIG_FUNCTIONS, 0));
      await Deno.writeTextFile(join(code, "websites/site/file4k.txt"), "x".repeat(4096));
      await waitForBuild(cloud.url, "bench", await commitAndPush(code, "bench code"));
      const job = await waitForBuild(cloud.url, "bench", await commitAndPush(join(project, "config"), "bench config"));
      if (job.status !== "success") throw new Error(`bench build failed: ${job.error}`);

      const bigSize = (await prepareModule(
        await compileAssemblyScript({ "index.ts": bigModuleSource(BIG_FUNCTIONS, 0) }, "index.ts", "big"),
        { timeoutMs: 10_000, memoryBytes: 16 << 20 },
        "big",
      )).length;
      // Cold start: the first request for /big right after a deploy that changed it (a new module), minus the
      // median warm request. Each sample is its own push of a new big module.
      const coldStarts: number[] = [];
      for (let v = 1; v <= COLD_SAMPLES; v++) {
        await Deno.writeTextFile(join(code, "functions/big/index.ts"), bigModuleSource(BIG_FUNCTIONS, v));
        const built = await waitForBuild(cloud.url, "bench", await commitAndPush(code, `big v${v}`));
        if (built.status !== "success") throw new Error(`big v${v} build failed: ${built.error}`);
        // Load the host's route table with another route first, so that /big measures the module alone.
        await hostRequest(cloud.port, HOST, "/file4k.txt");
        let t0 = performance.now();
        const first = await hostRequest(cloud.port, HOST, "/big");
        const cold = performance.now() - t0;
        if (first.status !== 200 || !first.text.startsWith(`big ${v} `)) {
          throw new Error(`big function answered ${first.status}: ${first.text}`);
        }
        const warmTimes: number[] = [];
        for (let i = 0; i < 21; i++) {
          t0 = performance.now();
          await hostRequest(cloud.port, HOST, "/big");
          warmTimes.push(performance.now() - t0);
        }
        coldStarts.push(cold - warmTimes.sort((a, b) => a - b)[10]);
      }

      // Push -> live for an AssemblyScript function: from `git push` to the first answer with the new text.
      const pushTimes: number[] = [];
      for (let i = 1; i <= 3; i++) {
        await Deno.writeTextFile(join(code, "functions/hello/index.ts"), hello(`v${i}`));
        await sh("git", ["commit", "-q", "-am", `v${i}`], code);
        const start = performance.now();
        await sh("git", ["push", "-q", "origin", "HEAD:main"], code);
        for (let n = 0; n < 2000; n++) {
          const r = await hostRequest(cloud.port, HOST, "/sdk");
          if (r.text === `hello v${i}`) break;
          await new Promise((r) => setTimeout(r, 2));
        }
        pushTimes.push(performance.now() - start);
      }

      const url = cloud.url;
      // Let the builds' background work (build helper, GC of build garbage) settle: measure the steady state.
      await new Promise((r) => setTimeout(r, 3000));
      const sdk = await interleaved(base, { url: `${url}/sdk`, host: HOST }, undefined, ref("/sdk"));
      const wagi = await interleaved(base, { url: `${url}/wagi`, host: HOST }, undefined, ref("/wagi"));
      const file = await interleaved(base, { url: `${url}/file4k.txt`, host: HOST }, undefined, ref("/file4k.txt"));

      console.log(
        `\ngateway: wrk -t1 -c${CONNECTIONS} -d${SECONDS}s per run, raw Deno.serve hello, tau and the same answer ` +
          `from raw Deno.serve in turn` +
          `${pinned ? ", both servers on core 0, wrk on core 1" : ""}; medians, ratio spread in brackets`,
      );
      console.log(pairedLine("(a) SDK hello function", sdk, "ratio >= 0.8, none < 0.6, p99 < 5 ms"));
      console.log(pairedLine("(b) WAGI hello function", wagi, "ratio >= 0.5"));
      console.log(pairedLine("(c) 4 KB website file", file, "ratio >= 0.8"));
      coldStarts.sort((a, b) => a - b);
      console.log(
        `cold start, ${(bigSize / 1024).toFixed(0)} KB module, first request after its deploy - warm median: ` +
          `${coldStarts.map((t) => t.toFixed(1)).join(", ")} ms, median ` +
          `${coldStarts[Math.floor(coldStarts.length / 2)].toFixed(1)} ms [goal <= 3 ms]`,
      );
      pushTimes.sort((a, b) => a - b);
      console.log(
        `push -> live (AssemblyScript): ${pushTimes.map((t) => t.toFixed(0)).join(", ")} ms, ` +
          `median ${pushTimes[1].toFixed(0)} ms`,
      );
    } finally {
      await cloud.stop();
    }
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
    }
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
