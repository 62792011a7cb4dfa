/**
 * Micro-benchmarks for the function runtime (not a test): `deno run -A runtime/wasm/bench_runtime.ts`.
 * Prints ns per invoke for an SDK hello and a WAGI hello, cold start of a fresh module, and the metering
 * overhead on a hot loop (prepared vs. raw module).
 */
import { compileAssemblyScript } from "./compile_as.ts";
import { meter } from "./meter.ts";
import { prepareModule } from "./prepare.ts";
import { FunctionRuntime } from "./runtime.ts";
import type { FunctionTarget } from "./types.ts";

const LIMITS = { timeoutMs: 1000, memoryBytes: 16 * 1024 * 1024 };
const HELLO = `import { Response } from "tau-sdk";
export function hello(): void { new Response().header("content-type", "text/plain").send("hello"); }`;
const HOT_LOOP = `export function work(n: i32): i32 {
  let s: i32 = 0;
  for (let i = 0; i < n; i++) s = s * 31 + (i ^ (s >>> 7));
  return s;
}`;

const store = new Map<string, Uint8Array>();
const rt = new FunctionRuntime({ load: (k) => Promise.resolve(store.get(k)!) });

async function perInvoke(label: string, target: FunctionTarget, n: number) {
  const ctx = { params: {}, requestId: "bench" };
  for (let i = 0; i < 2000; i++) await (await rt.invoke(target, new Request("http://b.test/x?y=1"), ctx)).arrayBuffer();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await (await rt.invoke(target, new Request("http://b.test/x?y=1"), ctx)).arrayBuffer();
  const ns = ((performance.now() - t0) / n) * 1e6;
  console.log(`${label.padEnd(40)} ${ns.toFixed(0).padStart(8)} ns/call`);
}

let t0 = performance.now();
const helloRaw = await compileAssemblyScript({ "index.ts": HELLO }, "index.ts", "hello");
const firstCompile = performance.now() - t0;
t0 = performance.now();
const loopRaw = await compileAssemblyScript({ "index.ts": HOT_LOOP }, "index.ts", "work");
console.log(
  `asc compile: first ${firstCompile.toFixed(0)} ms (loads the compiler), next ${
    (performance.now() - t0).toFixed(0)
  } ms`,
);

store.set("sdk", await prepareModule(helloRaw, LIMITS, "hello"));
const wagiBytes = await Deno.readFile(new URL("../../tests/fixtures/wagi/hello.wasm", import.meta.url));
t0 = performance.now();
const wagiPrepared = await prepareModule(wagiBytes, LIMITS, "hello");
console.log(
  `prepareModule (${(wagiBytes.length / 1024).toFixed(0)} KB C module): ${(performance.now() - t0).toFixed(1)} ms`,
);
store.set("wagi", wagiPrepared);

await perInvoke(
  "SDK hello (invoke, warm instance)",
  { key: "sdk", name: "hello", call: "hello", limits: LIMITS },
  50_000,
);
await perInvoke("WAGI hello (invoke, reset instance)", { key: "wagi", name: "hello", limits: LIMITS }, 20_000);

// Cold start: a key never seen => load + new WebAssembly.Module (lazy) + instantiate + first call.
const coldRuns = 30;
let coldTotal = 0;
for (let i = 0; i < coldRuns; i++) {
  const key = `cold-${i}`;
  store.set(key, wagiPrepared.slice());
  const c0 = performance.now();
  await (await rt.invoke({ key, name: "hello", limits: LIMITS }, new Request("http://b.test/"), {
    params: {},
    requestId: "cold",
  })).arrayBuffer();
  coldTotal += performance.now() - c0;
}
console.log(
  `cold start, ${(wagiPrepared.length / 1024).toFixed(0)} KB module (compile+instantiate+first call): ${
    (coldTotal / coldRuns).toFixed(2)
  } ms`,
);

// Metering overhead on a hot loop: same source, raw vs prepared.
const loopPrepared = await prepareModule(loopRaw, LIMITS, "work");
const env = { abort: () => {} };
const raw = new WebAssembly.Instance(new WebAssembly.Module(loopRaw as Uint8Array<ArrayBuffer>), { env });
const metered = new WebAssembly.Instance(new WebAssembly.Module(loopPrepared as Uint8Array<ArrayBuffer>), {
  env,
  tau_meter: { tick: meter.tick },
});
function timeLoop(inst: WebAssembly.Instance): number {
  const work = inst.exports.work as (n: number) => number;
  work(1_000_000);
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const s = performance.now();
    work(50_000_000);
    best = Math.min(best, performance.now() - s);
  }
  return best;
}
const rawMs = timeLoop(raw);
const meteredMs = timeLoop(metered);
console.log(
  `hot loop 50M iterations: raw ${rawMs.toFixed(1)} ms, metered ${meteredMs.toFixed(1)} ms, ratio ${
    (meteredMs / rawMs).toFixed(2)
  }x`,
);

await rt.close();
