/**
 * `deno task bench data`: databases and storages through a function against the stores underneath, in the same
 * run, interleaved (baseline, subject, baseline, subject...) over 5 rounds, medians with the spread.
 * - database put / get per second: a `taubyte/sdk` guest doing 20 databasePut (or databaseGetSize+databaseGet) calls
 *   per request, 100 requests, against Deno KV set / get of the same keys and values directly on the same kind of
 *   file. Gets run inline (suspended through JSPI while Deno KV answers); a put sends its call to an executor (an
 *   effect never runs inline), where each call crosses to the serving thread (host/bridge.ts);
 * - storage add / read MiB/s: the same guest adding (or reading) 100 KiB files one request each, against the
 *   content store's addBytes / cat directly.
 */
import { join } from "node:path";
import { Harness } from "../runtime/wasm/test_support.ts";
import { wat } from "../tests/helpers/wat.ts";
import { TAUBYTE_DATA_GUEST } from "../tests/fixtures/taubyte_data_guest.ts";
import { openContentStore } from "../runtime/storage/helia.ts";
import { openUserDataStore } from "../services/data/store.ts";
import { bindFunctionData } from "../services/data/bindings.ts";

/** Operations per request: a request doing a few database calls, as functions do (a request that does thousands
 * outgrows the inline budget and runs on an executor, where each call crosses threads: see host/bridge.ts). */
const OPS_PER_CALL = 20;
const CALLS = 100;
const OPS = OPS_PER_CALL * CALLS;
const ROUNDS = 5;
const VALUE = 100;
const FILE = 100 * 1024;
const FILES = 20;
const LIMITS = { timeoutMs: 60_000, memoryBytes: 4 << 20 };

/** `run(ev)`: N puts (op p) or gets (op g) of keys "k" + 3 letters from the loop counter, a 100-byte value. */
const LOOP = wat(`(module
  (import "taubyte/sdk" "getHttpEventMethodSize" (func $methodSize (param i32 i32) (result i32)))
  (import "taubyte/sdk" "newDatabase" (func $newDb (param i32 i32 i32) (result i32)))
  (import "taubyte/sdk" "databasePut" (func $put (param i32 i32 i32 i32 i32) (result i32)))
  (import "taubyte/sdk" "databaseGetSize" (func $getSize (param i32 i32 i32 i32) (result i32)))
  (import "taubyte/sdk" "databaseGet" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "taubyte/sdk" "eventHttpRetCode" (func $code (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "bench")
  (func $key (param $i i32)
    (i32.store8 (i32.const 128) (i32.const 107))
    (i32.store8 (i32.const 129) (i32.add (i32.const 97) (i32.rem_u (local.get $i) (i32.const 26))))
    (i32.store8 (i32.const 130) (i32.add (i32.const 97) (i32.rem_u (i32.div_u (local.get $i) (i32.const 26)) (i32.const 26))))
    (i32.store8 (i32.const 131) (i32.add (i32.const 97) (i32.rem_u (i32.div_u (local.get $i) (i32.const 676)) (i32.const 26)))))
  (global $base (mut i32) (i32.const 0))
  (global $err (mut i32) (i32.const 0))
  ;; the first failing errno
  (func $check (param $e i32)
    (if (i32.and (i32.eqz (global.get $err)) (i32.ne (local.get $e) (i32.const 0))) (then (global.set $err (local.get $e)))))
  (func (export "run") (param $ev i32) (result i32)
    (local $i i32) (local $get i32) (local $n i32)
    ;; GET reads, anything else writes (the method's length tells them apart: 3 for GET, 4 for POST)
    (drop (call $methodSize (local.get $ev) (i32.const 0)))
    (local.set $get (i32.eq (i32.load (i32.const 0)) (i32.const 3)))
    (global.set $err (i32.const 0))
    (call $check (call $newDb (i32.const 64) (i32.const 5) (i32.const 8)))
    (local.set $i (global.get $base))
    (local.set $n (i32.add (global.get $base) (i32.const ${OPS_PER_CALL})))
    (global.set $base (i32.rem_u (local.get $n) (i32.const ${OPS})))
    (loop $l
      (call $key (local.get $i))
      (if (local.get $get)
        (then
          (call $check (call $getSize (i32.load (i32.const 8)) (i32.const 128) (i32.const 4) (i32.const 12)))
          (call $check (call $get (i32.load (i32.const 8)) (i32.const 128) (i32.const 4) (i32.const 1024))))
        (else
          (call $check (call $put (i32.load (i32.const 8)) (i32.const 128) (i32.const 4) (i32.const 1024) (i32.const ${VALUE})))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (drop (call $code (local.get $ev) (select (i32.const 200) (i32.add (i32.const 400) (global.get $err)) (i32.eqz (global.get $err)))))
    (i32.const 0)))`);

const key = (i: number) =>
  "k" + String.fromCharCode(97 + (i % 26), 97 + (Math.floor(i / 26) % 26), 97 + (Math.floor(i / 676) % 26));

const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];
const spread = (x: number[], digits = 0) => `${Math.min(...x).toFixed(digits)}-${Math.max(...x).toFixed(digits)}`;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

export async function runDataBench(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tau-bench-data-" });
  const kv = await Deno.openKv(join(dir, "node.kv"));
  const direct = await Deno.openKv(join(dir, "direct.kv"));
  const content = await openContentStore(join(dir, "content"));
  const userData = await openUserDataStore({ kv, writer: "bench" });
  const h = new Harness();
  try {
    const host = bindFunctionData({ store: userData.store, content }, {
      project: "bench",
      functionId: "f",
      databases: [{ name: "bench", id: "d", match: "bench", regex: false, sizeBytes: 1e12 }],
      storages: [{
        name: "files",
        id: "s",
        match: "files",
        regex: false,
        type: "object",
        versioning: false,
        sizeBytes: 1e12,
      }],
    });
    // Two deployments of the loop: one that writes (soon pinned to executors: every call of it reaches an effect)
    // and one that only reads (inline).
    const loop = { ...await h.addWasm("run", LOOP, LIMITS, "run"), host };
    const reader = { ...await h.addWasm("run", LOOP, LIMITS, "run"), host };
    const files = { ...await h.addWasm("data", TAUBYTE_DATA_GUEST, LIMITS, "data"), host };
    const value = new Uint8Array(VALUE).fill(7);
    const call = async (target: typeof loop, req: Request) => {
      const res = await h.invoke(target, req);
      const body = new Uint8Array(await res.arrayBuffer());
      if (res.status !== 200) {
        throw new Error(`bench guest answered ${res.status}: ${h.logs.slice(-3).map((l) => l.text).join("; ")}`);
      }
      return body;
    };
    const viaPut = async () => {
      for (let c = 0; c < CALLS; c++) await call(loop, new Request("http://fn.test/", { method: "POST" }));
    };
    const viaGet = async () => {
      for (let c = 0; c < CALLS; c++) await call(reader, new Request("http://fn.test/"));
    };
    const kvPut = async () => {
      for (let i = 0; i < OPS; i++) await direct.set(["bench", key(i)], value);
    };
    const kvGet = async () => {
      for (let i = 0; i < OPS; i++) if ((await direct.get(["bench", key(i)])).value === null) throw new Error("miss");
    };
    const file = new Uint8Array(FILE).map((_, i) => (i * 2654435761) >>> 24); // not compressible, not random
    let n = 0;
    const viaAdd = async () => {
      for (let i = 0; i < FILES; i++) {
        await call(
          files,
          new Request(`http://fn.test/?op=S&db=files&key=f${n++ % FILES}`, { method: "POST", body: file }),
        );
      }
    };
    const viaRead = async () => {
      for (let i = 0; i < FILES; i++) await call(files, new Request(`http://fn.test/?op=F&db=files&key=f${i}`));
    };
    const cids: string[] = [];
    const heliaAdd = async () => {
      cids.length = 0;
      for (let i = 0; i < FILES; i++) {
        file[0] = i; // distinct content, as the function's files are after their first round
        cids.push(await content.addBytes(file));
      }
    };
    const heliaRead = async () => {
      for (const cid of cids) await content.cat(cid);
    };
    // Warm up every path once (JIT, executor boot, first KV writes).
    for (const f of [kvPut, viaPut, kvGet, viaGet, heliaAdd, viaAdd, heliaRead, viaRead]) await f();
    const pairs = async (base: () => Promise<unknown>, subject: () => Promise<unknown>) => {
      const b: number[] = [], s: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        b.push(await timed(base));
        s.push(await timed(subject));
      }
      return { b, s };
    };
    const report = (what: string, unit: string, perRound: number, base: string, r: { b: number[]; s: number[] }) => {
      const rate = (ms: number[]) => ms.map((t) => perRound / (t / 1000));
      const b = rate(r.b), s = rate(r.s);
      const ratios = r.b.map((t, i) => t / r.s[i]);
      console.log(
        `${what}: function ${median(s).toFixed(unit === "ops/s" ? 0 : 1)} ${unit} (${spread(s)}), ${base} ${
          median(b).toFixed(unit === "ops/s" ? 0 : 1)
        } ${unit} (${spread(b)}), ratio ${median(ratios).toFixed(2)} (per-round ${spread(ratios, 2)})`,
      );
    };
    report("database put", "ops/s", OPS, "Deno KV set", await pairs(kvPut, viaPut));
    report("database get", "ops/s", OPS, "Deno KV get", await pairs(kvGet, viaGet));
    const mib = (FILES * FILE) / (1024 * 1024);
    report("storage add (100 KiB files)", "MiB/s", mib, "Helia addBytes", await pairs(heliaAdd, viaAdd));
    report("storage read (100 KiB files)", "MiB/s", mib, "Helia cat", await pairs(heliaRead, viaRead));
  } finally {
    await h.runtime.close();
    userData.stop();
    await content.close();
    kv.close();
    direct.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runDataBench();
