/**
 * The metering inserted by prepareModule, one instruction class at a time. Every test counts clock checks (calls
 * to tau_meter.tick) or stops the guest at one, so nothing here depends on timing: a guest that reaches a check
 * can be stopped there, and these show where the checks are.
 */
import { TauError } from "../errors.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { CompiledFunction, execute } from "./engine.ts";
import { CHUNK_BYTES, DeadlineExceeded, Meter, METER_MODULE, METER_TICK } from "./meter.ts";
import { prepareModule } from "./prepare.ts";
import { wat } from "./test_support.ts";

const MB = 1024 * 1024;
const LIMITS = { timeoutMs: 1000, memoryBytes: 64 * MB };

class Stop extends Error {}

function assertThrows(fn: () => unknown, type: new (...a: never[]) => Error) {
  try {
    fn();
  } catch (e) {
    assert(e instanceof type, `expected ${type.name}, got ${e}`);
    return;
  }
  throw new Error(`expected ${type.name}, nothing was thrown`);
}

function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string) {
  assertEquals(actual.length, expected.length, what);
  const at = actual.findIndex((b, i) => b !== expected[i]);
  assertEquals(at, -1, `${what}: first difference`);
}

/** Instantiates a prepared module with a tick that counts, and throws Stop once `stopAt` ticks have happened. */
function metered(prepared: Uint8Array, imports: Record<string, Record<string, unknown>> = {}) {
  const state = { ticks: 0, stopAt: Infinity };
  const instance = new WebAssembly.Instance(new WebAssembly.Module(prepared as Uint8Array<ArrayBuffer>), {
    [METER_MODULE]: {
      [METER_TICK]: () => {
        if (++state.ticks >= state.stopAt) throw new Stop();
      },
    },
    ...imports,
  } as WebAssembly.Imports);
  const exports = instance.exports as Record<string, (...a: number[]) => number>;
  const memory = instance.exports.memory as WebAssembly.Memory | undefined;
  return { state, exports, memory };
}

async function prepareWat(text: string, limits = LIMITS) {
  return await prepareModule(wat(text), limits, "fn");
}

Deno.test("metering: an infinite loop and an endless tail call both reach the clock check", async () => {
  const m = metered(
    await prepareWat(`(module
    (func (export "loop") (loop $l (br $l)))
    (func $again (export "tail") (return_call $again)))`),
  );
  m.state.stopAt = 3;
  assertThrows(() => m.exports.loop(), Stop);
  m.state.ticks = 0;
  assertThrows(() => m.exports.tail(), Stop);
});

Deno.test("metering: fuel follows code size, so one pass over a long loop body is checked inside", async () => {
  // 20,000 stores in one loop body, run once: counting loop heads (the old metering) would never check here.
  let body = "";
  for (let i = 0; i < 20_000; i++) body += `(i32.store (i32.const ${i * 4}) (i32.const ${i}))`;
  const m = metered(
    await prepareWat(`(module (memory (export "memory") 2)
    (func (export "once") (loop $l ${body})))`),
  );
  m.exports.once();
  assert(m.state.ticks >= 2, `expected clock checks inside the loop body, saw ${m.state.ticks}`);
});

Deno.test("metering: a deep stack checks the clock on the way back up", async () => {
  // Each frame does real work after its recursive call returns. Ticks on the way down must not pay for the way up.
  let after = "";
  for (let i = 0; i < 300; i++) after += `(local.set 1 (i32.xor (local.get 1) (i32.const ${i})))`;
  const m = metered(
    await prepareWat(`(module (import "t" "bottom" (func $bottom))
      (func $down (export "down") (param i32) (local i32)
        (if (i32.eqz (local.get 0)) (then (call $bottom) (return)))
        (call $down (i32.sub (local.get 0) (i32.const 1)))
        ${after}))`),
    { t: { bottom: () => (m.state.stopAt = m.state.ticks + 1) } },
  );
  assertThrows(() => m.exports.down(2000), Stop);
});

Deno.test("metering: memory.fill is charged by size and stops between chunks", async () => {
  const size = 16 * MB;
  const m = metered(
    await prepareWat(`(module (memory (export "memory") 257)
    (func (export "fill") (memory.fill (i32.const 0) (i32.const 171) (i32.const ${size}))))`),
  );
  m.exports.fill();
  assert(m.state.ticks >= size / MB, `a 16 MiB fill checked the clock ${m.state.ticks} times, expected one per MiB`);
  // Stopped at its second check, the fill has written its first chunks and not its last ones.
  const again = metered(
    await prepareWat(`(module (memory (export "memory") 257)
    (func (export "fill") (memory.fill (i32.const 0) (i32.const 171) (i32.const ${size}))))`),
  );
  again.state.stopAt = 2;
  assertThrows(() => again.exports.fill(), Stop);
  const bytes = new Uint8Array(again.memory!.buffer);
  assertEquals(bytes[0], 171);
  assertEquals(bytes[size - 1], 0);
});

Deno.test("metering: memory.copy in chunks keeps memmove semantics both ways", async () => {
  const n = 3 * CHUNK_BYTES + 1234;
  const m = metered(
    await prepareWat(`(module (memory (export "memory") 16)
    (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2))))`),
  );
  for (const [dest, src] of [[1000, 5000], [5000, 1000]]) {
    const bytes = new Uint8Array(m.memory!.buffer);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 255;
    const expected = bytes.slice();
    expected.copyWithin(dest, src, src + n);
    m.exports.copy(dest, src, n);
    sameBytes(new Uint8Array(m.memory!.buffer), expected, `copy ${src} -> ${dest}`);
  }
});

Deno.test("metering: out-of-bounds fills and copies trap before writing anything", async () => {
  const m = metered(
    await prepareWat(`(module (memory (export "memory") 4)
    (func (export "fill") (param i32 i32) (memory.fill (local.get 0) (i32.const 9) (local.get 1)))
    (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2))))`),
  );
  const end = 4 * 65536;
  assertThrows(() => m.exports.fill(end - 100, 2 * CHUNK_BYTES), WebAssembly.RuntimeError);
  assertThrows(() => m.exports.fill(0xffff0000, 2 * CHUNK_BYTES), WebAssembly.RuntimeError); // would wrap at 4 GiB
  assertThrows(() => m.exports.copy(0, end - 100, 2 * CHUNK_BYTES), WebAssembly.RuntimeError);
  assert(new Uint8Array(m.memory!.buffer).every((b) => b === 0), "nothing was written");
});

Deno.test("metering: memory.init, memory.grow and table.grow spend fuel by their size", async () => {
  const m = metered(
    await prepareWat(`(module (memory (export "memory") 2 1000) (table $t 1 funcref)
    (data $d "${"\\00".repeat(65536)}")
    (func (export "init") (local i32)
      (loop $l (memory.init $d (i32.const 0) (i32.const 0) (i32.const 65536))
        (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br_if $l (i32.lt_u (local.get 0) (i32.const 64)))))
    (func (export "grow") (local i32)
      (loop $l (drop (memory.grow (i32.const 1)))
        (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br_if $l (i32.lt_u (local.get 0) (i32.const 100)))))
    (func (export "tableGrow") (local i32)
      (loop $l (drop (table.grow $t (ref.null func) (i32.const 1000)))
        (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br_if $l (i32.lt_u (local.get 0) (i32.const 50))))))`),
  );
  // The loops themselves cost ~1,000 units, far less than one check; their operations' sizes far more. One
  // operation bigger than a check's worth (a table.grow of 1000 entries) checks once, before it runs.
  for (const [fn, atLeast] of [["init", 6], ["grow", 12], ["tableGrow", 50]] as const) {
    m.state.ticks = 0;
    m.exports[fn]();
    assert(m.state.ticks >= atLeast, `${fn}: ${m.state.ticks} clock checks, expected at least ${atLeast}`);
  }
});

Deno.test("metering: host calls spend fuel by what they touch (fd_write iovecs, random_get bytes)", async () => {
  // Deadline already passed: the guest's own code is too short to reach a check, so only the host's charge can
  // stop these calls. Without it both would finish (and answer 502 for writing nothing).
  const input = { method: "GET", path: "/", query: "", headers: new Headers(), body: null, params: {}, requestId: "r" };
  const cases = {
    iovecs: `(call $fd_write (i32.const 2) (i32.const 0) (i32.const 1000000) (i32.const 8000000))`,
    random: `(call $random_get (i32.const 0) (i32.const ${8 * MB}))`,
  };
  for (const [name, call] of Object.entries(cases)) {
    const prepared = await prepareWat(`(module
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
      (memory (export "memory") 160)
      (func (export "_start") (drop ${call})))`);
    const outcome = await execute(
      CompiledFunction.compile(name, prepared),
      { name },
      input,
      performance.now() - 1,
      true,
    );
    assertEquals(outcome.kind, "budget", name);
  }
});

Deno.test("metering proof: prepared modules may run inline, unproven or costly ones only on executors", async () => {
  const prepared = await prepareWat(`(module (memory (export "memory") 1) (func (export "_start")))`);
  assert(CompiledFunction.compile("ok", prepared).inline);
  // A module metered the old way (it imports the tick, has no proof) is not trusted on the serving thread.
  const old = CompiledFunction.compile(
    "old",
    wat(`(module (import "tau_meter" "tick" (func)) (memory (export "memory") 1) (func (export "_start")))`),
  );
  assert(!old.inline);
  assertStringIncludes(old.notInlineWhy!, "not prepared");
  const big = CompiledFunction.compile(
    "big",
    await prepareWat(`(module (memory (export "memory") 1) (func (export "_start")))`, {
      timeoutMs: 1000,
      memoryBytes: 128 * MB,
    }),
  );
  assert(!big.inline);
  assertEquals(big.notInlineWhy, "execution.memory 128MiB is over 64MiB");
});

Deno.test("prepareModule refuses what cannot be bounded, naming the function and the feature", async () => {
  const refused: [string, string][] = [
    [
      `(module (memory 1 1 shared) (func (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))))`,
      "function fn uses shared memory (threads); tau runs every function on one thread",
    ],
    [`(module (memory 1) (func (drop (i32.atomic.load (i32.const 0)))))`, "function fn uses threads (i32.atomic.load)"],
    [
      `(module (type $a (array (mut i32))) (func (drop (array.new $a (i32.const 0) (i32.const 100000000)))))`,
      "function fn uses wasm GC (array.new), which tau does not run",
    ],
    [`(module (tag $e) (func (throw $e)))`, "function fn uses wasm exception handling (throw)"],
    [`(module (memory i64 1))`, "function fn uses a 64-bit memory"],
    [
      `(module (table 10 funcref) (func (table.fill 0 (i32.const 0) (ref.null func) (i32.const 5))))`,
      "function fn uses table.fill, which tau cannot meter",
    ],
    [`(module (memory 1) (memory 1))`, "function fn defines 2 memories; tau supports one"],
    [`(module (import "env" "t" (table 1 funcref)))`, "function fn imports table env.t; tau provides functions only"],
    [`(module (table 70000 funcref))`, "function fn starts with 70000 table entries; tau allows up to 65536"],
  ];
  for (const [text, message] of refused) {
    await assertRejects(() => prepareModule(wat(text), LIMITS, "fn"), (e) => {
      assert(e instanceof TauError, `${message}: ${e}`);
      assertStringIncludes(e.message, message);
      assert(e.hint === undefined || e.hint.length > 0);
    });
  }
});

Deno.test("meter: a deadline passed while the guest kept checking is an overrun; one passed in a single stretch a stall", () => {
  const m = new Meter();
  let start = performance.now();
  m.begin(start + 200, start);
  try {
    for (;;) m.tick(); // checks microseconds apart until the deadline
  } catch (e) {
    assert(e instanceof DeadlineExceeded);
  }
  assertEquals(m.stalled, false);
  start = performance.now();
  m.begin(start + 20, start);
  while (performance.now() < start + 60) { /* one long stretch without a check: a GC pause, page faults */ }
  let threw = false;
  try {
    m.tick();
  } catch (e) {
    threw = e instanceof DeadlineExceeded;
  }
  assert(threw, "the late check throws DeadlineExceeded");
  assertEquals(m.stalled, true);
});
