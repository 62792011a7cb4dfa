/**
 * Run by bench/memory_bench.ts in a fresh process: what each part of a node adds to a process's private memory, in
 * the order a node loads them. A service's modules share dependencies with those loaded before them, so each line is
 * what that service adds to the ones above it. Then the Workers a node starts when it serves functions.
 * Prints { parts: [{ part, privateBytes, heapUsedBytes }] (deltas), latency: { ...Ms: number[] } } on stdout, as JSON.
 * Run with --v8-flags=--expose-gc.
 * Specifiers are computed, not literals: Deno loads the module graph of every literal dynamic import at start, which
 * would put every part's source in the first figure.
 */
import { processMemory } from "../runtime/memory.ts";

const PARTS: [string, string[]][] = [
  ["HTTP routing (hono), node:path (the first of Deno's Node layer)", ["hono", "../runtime/kv/open.ts"]],
  ["content store (Helia, UnixFS, fs blockstore)", ["../runtime/storage/helia.ts"]],
  ["function runtime and gateway (substrate)", ["../runtime/wasm/runtime.ts", "../services/gateway/gateway.ts"]],
  ["control state (kvdb, tns, auth, patrick, rollout)", [
    "../services/kvdb/store.ts",
    "../services/tns/tns.ts",
    "../services/auth/projects.ts",
    "../services/patrick/jobs.ts",
    "../services/rollout/rollout.ts",
  ]],
  ["config schema and builds (monkey)", ["../runtime/schema/mod.ts", "../services/monkey/build.ts"]],
  ["containers (substrate)", ["../services/substrate/containers.ts"]],
  ["git hosting", ["../services/git/hosting.ts"]],
  ["user data (databases, storages)", ["../services/data/store.ts", "../services/data/host.ts"]],
  ["the rest of the node (API routes, wiring)", ["../services/node.ts"]],
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const spec = (s: string) => s.startsWith(".") ? new URL(s, import.meta.url).href : [s].join("");

/** Run with --v8-flags=--expose-gc: heap figures after a full collection, not wherever the last GC left them. */
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

async function sample(): Promise<{ priv: number; heap: number }> {
  gc();
  await sleep(300);
  return { priv: (await processMemory(Deno.pid))!.privateBytes, heap: Deno.memoryUsage().heapUsed };
}

const out: { part: string; privateBytes: number; heapUsedBytes: number }[] = [];
let last = await sample();
out.push({ part: "deno itself, with tau's config and lockfile", privateBytes: last.priv, heapUsedBytes: last.heap });
const record = async (part: string) => {
  const now = await sample();
  out.push({ part, privateBytes: now.priv - last.priv, heapUsedBytes: now.heap - last.heap });
  last = now;
};
for (const [part, modules] of PARTS) {
  for (const m of modules) await import(spec(m));
  await record(part);
}

// Opened, not only loaded: Deno KV (SQLite and its page cache) with a thousand keys written and read, and the content
// store with a 1 MiB file added and read back.
const dir = await Deno.makeTempDir({ prefix: "tau-bench-parts-" });
const { openNodeKv } = await import(spec("../runtime/kv/open.ts"));
const kv: Deno.Kv = await openNodeKv(dir);
for (let i = 0; i < 1000; i++) await kv.set(["k", i], "x".repeat(100));
for await (const _ of kv.list({ prefix: ["k"] })) { /* read back */ }
await record("Deno KV opened, 1,000 keys written and listed");
const { openContentStore } = await import(spec("../runtime/storage/helia.ts"));
const store = await openContentStore(`${dir}/storage`);
await store.cat(await store.addBytes(new Uint8Array(1 << 20).fill(7)));
await record("content store started, 1 MiB added and read");
await store.close();
kv.close();
await Deno.remove(dir, { recursive: true });

// The Workers: the watchdog (started when the node serves a function) and an executor after one call.
const { ServingWatchdog } = await import(spec("../runtime/wasm/watchdog.ts"));
const dog = new ServingWatchdog({ exitAfterMs: null });
dog.watch();
await dog.ready;
await record("watchdog Worker (once the node serves a function)");
const { ExecutorPool } = await import(spec("../runtime/wasm/executor_pool.ts"));
// The smallest WAGI module, `(module (memory (export "memory") 1) (func (export "_start")))`: _start returns at once
// (the call answers 502 for want of output). What is measured is the Worker.
const wasm = Uint8Array.from(
  atob("AGFzbQEAAAABBAFgAAADAgEABQMBAAEHEwIGbWVtb3J5AgAGX3N0YXJ0AAAKBAECAAs="),
  (c) => c.charCodeAt(0),
);
const input = { method: "GET", path: "/", query: "", headers: new Headers(), body: null, params: {}, requestId: "m" };
const call = (pool: InstanceType<typeof ExecutorPool>) =>
  pool.run({ key: "m", bytes: wasm, name: "m", timeoutMs: 5_000, input, project: "m" });
let pool = new ExecutorPool(1);
await call(pool);
await record("executor Worker (from the first call that outgrows the inline budget)");
pool.close();
dog.close();

// The cold paths this costs, 5 times each: how long constructing a Worker holds the thread that constructs it, and a
// first executor call on a pool with no worker against one whose worker was booted ahead.
const latency = { workerConstructMs: [] as number[], coldCallMs: [] as number[], warmCallMs: [] as number[] };
for (let i = 0; i < 5; i++) {
  const d = new ServingWatchdog({ exitAfterMs: null });
  let t = performance.now();
  d.watch();
  latency.workerConstructMs.push(performance.now() - t);
  await d.ready;
  d.close();
  pool = new ExecutorPool(1);
  t = performance.now();
  await call(pool);
  latency.coldCallMs.push(performance.now() - t);
  pool.close();
  pool = new ExecutorPool(1);
  pool.warm();
  await sleep(1000);
  t = performance.now();
  await call(pool);
  latency.warmCallMs.push(performance.now() - t);
  pool.close();
}
console.log(JSON.stringify({ parts: out, latency }));
Deno.exit(0);
