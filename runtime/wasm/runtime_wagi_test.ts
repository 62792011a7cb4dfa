import { CompiledFunction, execute } from "./engine.ts";
import { ExecutorPool } from "./executor_pool.ts";
import { RESET_MAX_BYTES } from "./instance_reset.ts";
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { METERING_SECTION, type MeteringProof, readProof } from "./meter.ts";
import type { CallInput, Outcome } from "./outcome.ts";
import { prepareModule } from "./prepare.ts";
import { callInput, fixtureWasm, Harness, LIMITS, wat } from "./test_support.ts";
import { appendCustomSection } from "./wasm_binary.ts";

/**
 * These tests are about what a call sees, not its time: a budget and a timeout no loaded machine reaches, so that no
 * call goes to an executor (whose first call waits for a worker to boot) by accident.
 */
const SLOW_OK = { ...LIMITS, timeoutMs: 10_000 };
const STEADY = { inlineBudgetMs: 5_000 };

Deno.test("WAGI: hello.wasm gets the request CGI-style and answers with its headers and body", async () => {
  const h = new Harness();
  try {
    const t = await h.addWasm("hello", await fixtureWasm("hello"), LIMITS, "hello");
    const req = new Request("http://fn.test/items/7?status=201&stderr=1", {
      method: "PUT",
      headers: { "x-test": "yes" },
      body: "the body",
    });
    const res = await h.invoke(t, req, { id: "7" }, "req-wagi");
    assertEquals(res.status, 201);
    assertEquals(res.headers.get("content-type"), "text/plain");
    assertEquals(res.headers.get("x-echo-method"), "PUT");
    assertEquals(
      await res.text(),
      "method=PUT\npath=/items/7\nquery=status=201&stderr=1\nx-test=yes\nid=7\nbody=the body\n",
    );
    assertEquals(h.logsOf("req-wagi").map((l) => [l.stream, l.text]), [["stderr", "hello from stderr"]]);

    const plain = await h.invoke(t, "/");
    assertEquals(plain.status, 200); // no Status header
    assertStringIncludes(await plain.text(), "method=GET\npath=/\n");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("WAGI: execution.call _start runs the command CGI-style, not as an SDK call with an empty environment", async () => {
  const h = new Harness();
  try {
    const t = await h.addWasm("hello", await fixtureWasm("hello"), LIMITS, "_start");
    const res = await h.invoke(t, new Request("http://fn.test/x?status=202", { headers: { "x-test": "on" } }));
    assertEquals(res.status, 202);
    assertStringIncludes(await res.text(), "method=GET\npath=/x\nquery=status=202\nx-test=on\n");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("WAGI: non-ASCII route params and header names that meet reach the environment as in a record", async () => {
  const h = new Harness(STEADY);
  try {
    const t = await h.addWasm("hello", await fixtureWasm("hello"), SLOW_OK, "hello");
    const res = await h.invoke(t, new Request("http://fn.test/", { headers: { "x-test": "one", "x_test": "two" } }), {
      id: "ünï-cödé",
      other: "x",
    });
    const text = await res.text();
    assertStringIncludes(text, "id=ünï-cödé\n");
    // x-test and x_test are both HTTP_X_TEST: the last value wins, as it always did
    assertStringIncludes(text, "x-test=two\n");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("WAGI: a trap answers 500 and its stderr reaches the log", async () => {
  const h = new Harness();
  try {
    const t = await h.addWasm("trap", await fixtureWasm("trap"), LIMITS);
    const res = await h.invoke(t, "/", {}, "req-trap");
    assertEquals(res.status, 500);
    assertEquals(await res.text(), "function trap failed (request req-trap)");
    const logs = h.logsOf("req-trap").map((l) => [l.stream, l.text]);
    assertEquals(logs, [["stderr", "about to trap"], ["trap", "trap: unreachable"]]);
  } finally {
    await h.runtime.close();
  }
});

Deno.test("WAGI: a malformed header block answers 502 with a clear log line", async () => {
  const h = new Harness();
  try {
    const t = await h.addWasm("bad", await fixtureWasm("badheaders"), LIMITS);
    const res = await h.invoke(t, "/", {}, "req-bad");
    assertEquals(res.status, 502);
    await res.body?.cancel();
    const trap = h.logsOf("req-bad").find((l) => l.stream === "trap");
    assertStringIncludes(trap!.text, `CGI header line 1 is not "Name: value"`);
  } finally {
    await h.runtime.close();
  }
});

Deno.test("WAGI: an infinite loop answers 504 from the executor", async () => {
  const h = new Harness({ executors: 1 });
  try {
    const t = await h.addWasm("loop", await fixtureWasm("loop"), { ...LIMITS, timeoutMs: 200 });
    const res = await h.invoke(t, "/", {}, "req-loop");
    assertEquals(res.status, 504);
    assertEquals(await res.text(), "function loop timed out after 200ms (request req-loop)");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("executor backstop: a guest that never meets its deadline is terminated and answered 504", async () => {
  // The raw (unprepared) loop has no metering at all: only terminate() can stop it.
  const pool = new ExecutorPool(1);
  try {
    const job = {
      key: "raw-loop",
      bytes: await fixtureWasm("loop"),
      name: "loop",
      project: "p",
      timeoutMs: 100,
      input: { method: "GET", path: "/", query: "", headers: new Headers(), body: null, params: {}, requestId: "r" },
    };
    const outcome = await pool.run(job);
    assertEquals(outcome.kind === "error" && outcome.reason, "timeout");
    // The pool spawned a fresh worker: a following job still runs (and also times out).
    const second = await pool.run(job);
    assert(second.kind === "error" && second.reason === "timeout");
  } finally {
    pool.close();
  }
});

/**
 * A guest that leaks on purpose. Before it reads its request body it reports what the previous request could have
 * left behind: 16 bytes where it puts the body (1024), two mutable globals it sets from the body, 16 bytes in a far
 * part of its memory it copies the body to (60000), and its memory size in pages. Then it acts on the body's first
 * byte: "g" grows its memory (and writes the body into the new page), "t" traps, "e" calls proc_exit(0), "l" loops.
 */
const LEAKY = `(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (global $kept (mut i32) (i32.const 0))
  (global $wide (mut i64) (i64.const 0))
  (data (i32.const 0) "Content-Type: application/octet-stream\\n\\n")
  (func $out (param $ptr i32) (param $len i32)
    (i32.store (i32.const 256) (local.get $ptr))
    (i32.store (i32.const 260) (local.get $len))
    (drop (call $write (i32.const 1) (i32.const 256) (i32.const 1) (i32.const 264))))
  (func (export "_start")
    (local $first i32)
    (call $out (i32.const 0) (i32.const 40))
    (memory.copy (i32.const 3000) (i32.const 1024) (i32.const 16))
    (i32.store (i32.const 3016) (global.get $kept))
    (i64.store (i32.const 3020) (global.get $wide))
    (memory.copy (i32.const 3028) (i32.const 60000) (i32.const 16))
    (i32.store (i32.const 3044) (memory.size))
    (call $out (i32.const 3000) (i32.const 48))
    (i32.store (i32.const 256) (i32.const 1024))
    (i32.store (i32.const 260) (i32.const 16))
    (drop (call $read (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 264)))
    (global.set $kept (i32.load (i32.const 1024)))
    (global.set $wide (i64.load (i32.const 1028)))
    (memory.copy (i32.const 60000) (i32.const 1024) (i32.const 16))
    (local.set $first (i32.load8_u (i32.const 1024)))
    (if (i32.eq (local.get $first) (i32.const 103))
      (then
        (drop (memory.grow (i32.const 1)))
        (memory.copy (i32.const 65536) (i32.const 1024) (i32.const 16))))
    (if (i32.eq (local.get $first) (i32.const 116)) (then unreachable))
    (if (i32.eq (local.get $first) (i32.const 101)) (then (call $exit (i32.const 0))))
    (if (i32.eq (local.get $first) (i32.const 108)) (then (loop $spin (br $spin))))))`;

/** What LEAKY reports when nothing of an earlier request reached it: zeros, and a memory of one page. */
const CLEAN = new Uint8Array(48);
CLEAN[44] = 1;

Deno.test("WAGI: a warm instance keeps nothing of one request for the next (memory, globals, far pages)", async () => {
  const h = new Harness(STEADY);
  try {
    const t = await h.addWasm("leaky", wat(LEAKY), SLOW_OK);
    for (
      const body of ["first secret!!!!", "second secret!!!", "e: exit(0)", "after exit......", "g: grow", "t: trap"]
    ) {
      const res = await h.invoke(t, new Request("http://fn.test/", { method: "POST", body }));
      const report = new Uint8Array(await res.arrayBuffer());
      if (body.startsWith("t")) {
        assertEquals(res.status, 500);
        continue;
      }
      assertEquals(res.status, 200, `${body}: ${new TextDecoder().decode(report)}`);
      assertEquals(report, CLEAN, `before "${body}"`);
    }
    const res = await h.invoke(t, new Request("http://fn.test/", { method: "POST", body: "after trap" }));
    assertEquals(new Uint8Array(await res.arrayBuffer()), CLEAN, "after the trap");
  } finally {
    await h.runtime.close();
  }
  // The same on an executor worker, which keeps its own instance. (A long timeout: the pool's clock starts before the
  // worker has booted, which under `deno test` on a loaded machine includes type-checking it.)
  const pool = new ExecutorPool(1);
  try {
    const bytes = await prepareModule(wat(LEAKY), SLOW_OK, "leaky");
    for (const body of ["first secret", "second secret", "3rd"]) { // not "t...": a "t" traps
      const input = { ...REQUEST, body: new TextEncoder().encode(body) };
      const outcome = await pool.run({ key: "leaky", bytes, name: "leaky", project: "p", timeoutMs: 120_000, input });
      assert(outcome.kind === "response", JSON.stringify(outcome));
      assertEquals(new Uint8Array(outcome.body!), CLEAN, `executor, before "${body}"`);
    }
  } finally {
    pool.close();
  }
});

const REQUEST: CallInput = callInput("POST");

function call(fn: CompiledFunction, body: string, timeoutMs = 10_000): Outcome {
  const start = performance.now();
  const input = { ...REQUEST, body: new TextEncoder().encode(body) };
  return execute(fn, { name: "leaky" }, input, start + timeoutMs, false, start) as Outcome;
}

Deno.test("WAGI: one instance serves call after call; growing memory, a trap, a timeout or proc_exit drops it", async () => {
  const fn = CompiledFunction.compile("leaky", await prepareModule(wat(LEAKY), LIMITS, "leaky"));
  assertEquals(fn.resetPlan?.globals?.length, 3); // $kept, $wide and the metering's fuel
  assertEquals(call(fn, "one").kind, "response");
  const warm = fn.wagi;
  assert(warm, "a warm instance is kept after a call that returned");
  assertEquals(call(fn, "2nd").kind, "response"); // not "two": a "t" traps
  assert(fn.wagi === warm, "the same instance served the next call");
  for (const [body, kind] of [["grow", "response"], ["trap", "error"], ["exit", "response"], ["loop", "error"]]) {
    assertEquals(call(fn, "x").kind, "response");
    assert(fn.wagi, `warm before "${body}"`);
    const outcome = call(fn, body, body === "loop" ? 50 : 10_000);
    assertEquals(outcome.kind, kind, body);
    if (body === "loop") assert(outcome.kind === "error" && outcome.reason === "timeout");
    assertEquals(fn.wagi, undefined, `no instance kept after "${body}"`);
    const next = call(fn, "next");
    assert(next.kind === "response");
    assertEquals(next.body, new Uint8Array([...CLEAN]), `after "${body}"`);
  }
});

Deno.test("WAGI: a module that changes its tables, has a big memory or was prepared before resets gets a fresh instance per call", async () => {
  // Slot 0 holds $a; each call reports what slot 0 answers, then points it at $b. A kept instance would answer B.
  const tables = await prepareModule(
    wat(`(module
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (type $v (func (result i32)))
      (table 1 funcref)
      (elem (i32.const 0) $a)
      (elem declare func $b)
      (func $a (result i32) (i32.const 65))
      (func $b (result i32) (i32.const 66))
      (data (i32.const 0) "Content-Type: text/plain\\n\\n")
      (func (export "_start")
        (i32.store8 (i32.const 26) (call_indirect (type $v) (i32.const 0)))
        (table.set (i32.const 0) (ref.func $b))
        (i32.store (i32.const 100) (i32.const 0))
        (i32.store (i32.const 104) (i32.const 27))
        (drop (call $write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 108)))))`),
    LIMITS,
    "tables",
  );
  const fn = CompiledFunction.compile("tables", tables);
  assertStringIncludes(fn.resetPlan!.why!, "table.set");
  for (let i = 0; i < 3; i++) {
    const outcome = call(fn, "");
    assert(outcome.kind === "response");
    assertEquals(new TextDecoder().decode(outcome.body!), "A");
    assertEquals(fn.wagi, undefined);
  }
  // A memory bigger than RESET_MAX_BYTES: a reset would write all of it, a fresh instance only what a call touches.
  const big = CompiledFunction.compile(
    "big",
    await prepareModule(wat(LEAKY.replace(`(memory (export "memory") 1)`, `(memory (export "memory") 48)`)), {
      ...LIMITS,
      memoryBytes: 4 * 1024 * 1024,
    }, "big"),
  );
  assert(big.resetPlan?.globals, "the module itself could be reset");
  assert(48 * 65536 > RESET_MAX_BYTES);
  assertEquals(call(big, "one").kind, "response");
  assertEquals(big.wagi, undefined);
  // A module prepared before resets existed: its proof has no plan; it runs as it always did.
  const prepared = await prepareModule(wat(LEAKY), LIMITS, "leaky");
  const old = CompiledFunction.compile("old", withoutResetPlan(prepared));
  assert(old.inline, "still trusted inline: the metering did not change");
  assertEquals(old.resetPlan, undefined);
  for (let i = 0; i < 3; i++) {
    const outcome = call(old, "a secret");
    assert(outcome.kind === "response");
    assertEquals(outcome.body, new Uint8Array([...CLEAN]));
    assertEquals(old.wagi, undefined);
  }
});

Deno.test("WAGI: a C guest that keeps each body on its heap sees none of them (leak.wasm)", async () => {
  const h = new Harness(STEADY);
  try {
    const t = await h.addWasm("leak", await fixtureWasm("leak"), SLOW_OK);
    for (const body of ["first secret", "second secret", "third"]) {
      const res = await h.invoke(t, new Request("http://fn.test/", { method: "POST", body }));
      assertEquals(await res.text(), "calls=0 last=(none)\n");
    }
  } finally {
    await h.runtime.close();
  }
});

/** The prepared module with its proof rewritten as an older prepareModule wrote it: no reset plan. */
function withoutResetPlan(prepared: Uint8Array): Uint8Array {
  const encode = (proof: MeteringProof) => new TextEncoder().encode(JSON.stringify(proof));
  const proof = readProof(new WebAssembly.Module(prepared as Uint8Array<ArrayBuffer>))!;
  const section = appendCustomSection(new Uint8Array(0), METERING_SECTION, encode(proof));
  const rest = prepared.subarray(0, prepared.length - section.length);
  assertEquals(prepared.subarray(rest.length), section, "the proof is the module's last section");
  delete proof.reset;
  return appendCustomSection(rest, METERING_SECTION, encode(proof));
}
