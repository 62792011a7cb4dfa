/**
 * `deno task bench abi`: the cost of one host call in Taubyte's ABI (`taubyte/sdk` getHttpEventMethodSize: event
 * check, a u32 written to guest memory) against one in tau's (`tau` req_len: a cached field length), both from a
 * wasm loop of 100,000 calls in the same prepared (metered) modules the gateway runs, interleaved (tau, Taubyte,
 * tau, Taubyte...) over 7 rounds, medians.
 */
import { Harness } from "../runtime/wasm/test_support.ts";
import { wat } from "../tests/helpers/wat.ts";

// Each run stays well under the serving thread watchdog (1 s), so both modules keep running inline.
const CALLS = 100_000;
const LIMITS = { timeoutMs: 30_000, memoryBytes: 1 << 20 };

const loop = (imp: string, call: string) =>
  wat(`(module
  ${imp}
  (memory (export "memory") 1)
  (func (export "run") (param $ev i32) (result i32)
    (local $i i32)
    (loop $l
      (drop ${call})
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const ${CALLS}))))
    (i32.const 0)))`);

const TAU = loop(`(import "tau" "req_len" (func $f (param i32) (result i32)))`, `(call $f (i32.const 0))`);
const TAUBYTE = loop(
  `(import "taubyte/sdk" "getHttpEventMethodSize" (func $f (param i32 i32) (result i32)))`,
  `(call $f (local.get $ev) (i32.const 64))`,
);

export async function runAbiBench(): Promise<void> {
  const h = new Harness({ inlineBudgetMs: 60_000 });
  try {
    const tau = await h.addWasm("run", TAU, LIMITS, "run");
    const taubyte = await h.addWasm("run", TAUBYTE, LIMITS, "run");
    const time = async (target: typeof tau) => {
      const t = performance.now();
      const res = await h.invoke(target, "/");
      await res.body?.cancel();
      if (res.status !== 200) throw new Error(`bench guest answered ${res.status}`);
      return ((performance.now() - t) * 1e6) / CALLS; // ns per call
    };
    await time(tau);
    await time(taubyte);
    const a: number[] = [], b: number[] = [];
    for (let i = 0; i < 7; i++) {
      a.push(await time(tau));
      b.push(await time(taubyte));
    }
    const med = (x: number[]) => [...x].sort((p, q) => p - q)[3];
    console.log(
      `host call: tau ABI (req_len) ${med(a).toFixed(0)} ns, taubyte/sdk (getHttpEventMethodSize) ${
        med(b).toFixed(0)
      } ns, ratio ${(med(b) / med(a)).toFixed(2)} (medians of 7 interleaved rounds of ${CALLS} calls; ` +
        `spread tau ${Math.min(...a).toFixed(0)}-${Math.max(...a).toFixed(0)}, taubyte ${Math.min(...b).toFixed(0)}-${
          Math.max(...b).toFixed(0)
        })`,
    );
  } finally {
    await h.runtime.close();
  }
}

if (import.meta.main) await runAbiBench();
