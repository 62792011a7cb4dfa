/**
 * What a guest can make the host hold, through FunctionRuntime.invoke (the gateway's entry point): log volume,
 * response headers, the node's own headers, memory kept by a warm instance, and execution.memory.
 */
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { LOG_BYTES_PER_CALL, LogRate, MAX_RESPONSE_HEADERS } from "./guest_output.ts";
import { Harness, wat } from "./test_support.ts";

const MB = 1024 * 1024;
const LIMITS = { timeoutMs: 2000, memoryBytes: 64 * MB };
const SDK = `(import "tau" "resp_header" (func $header (param i32 i32 i32 i32)))
  (import "tau" "resp_write" (func $write (param i32 i32)))`;
const WASI = `(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))`;

Deno.test("logs: one call's stderr is capped, the rest dropped with a marker line (24 x 16 MiB in one fd_write)", async () => {
  const h = new Harness();
  try {
    // 24 iovecs at 16 MiB + 64 each pointing at the same 16 MiB of memory, then a CGI answer on stdout.
    const t = await h.addWasm(
      "flood",
      wat(`(module ${WASI} (memory (export "memory") 260)
        (data (i32.const 64) "Status: 200\\n\\nok")
        (func (export "_start") (local $i i32)
          (loop $l
            (i32.store (i32.add (i32.const ${16 * MB}) (i32.mul (local.get $i) (i32.const 8))) (i32.const 4096))
            (i32.store (i32.add (i32.const ${16 * MB + 4}) (i32.mul (local.get $i) (i32.const 8))) (i32.const ${
        16 * MB
      }))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 24))))
          (drop (call $fd_write (i32.const 2) (i32.const ${16 * MB}) (i32.const 24) (i32.const 0)))
          (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 15))
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`),
      { ...LIMITS, memoryBytes: 20 * MB },
    );
    const res = await h.invoke(t, "/", {}, "req-flood");
    assertEquals(res.status, 200);
    assertEquals(await res.text(), "ok");
    const logs = h.logsOf("req-flood");
    const kept = logs.filter((l) => l.stream === "stderr").reduce((n, l) => n + l.text.length, 0);
    assert(kept <= LOG_BYTES_PER_CALL, `kept ${kept} bytes of log`);
    const marker = logs.at(-1)!;
    assertEquals(marker.stream, "trap");
    assertEquals(
      marker.text,
      `log output over 64 KiB for this call: ${24 * 16 * MB - LOG_BYTES_PER_CALL} bytes dropped`,
    );
  } finally {
    await h.runtime.close();
  }
});

Deno.test("logs: a function's log volume per second is capped, with one marker line for what was dropped", () => {
  let now = 0;
  const rate = new LogRate(1000, 10_000, () => now);
  const line = { stream: "log" as const, text: "x".repeat(99) }; // 100 bytes with its newline
  const first = rate.admit("k", "fn", Array(15).fill(line));
  assertEquals(first.kept.length, 10);
  assertEquals(first.markers, []);
  now = 1500;
  const next = rate.admit("k", "fn", [line]);
  assertEquals(next.kept.length, 1);
  assertEquals(next.markers, [{ name: "fn", text: "log output over 1000 bytes/s: 5 lines dropped" }]);
});

Deno.test("response headers: more than the cap, or too many bytes, answer 502 with the reason in the log", async () => {
  const h = new Harness();
  try {
    const many = await h.addWasm(
      "many",
      wat(`(module ${SDK} (memory (export "memory") 1) (data (i32.const 0) "x-a1")
        (func (export "many") (local $i i32)
          (loop $l (call $header (i32.const 0) (i32.const 3) (i32.const 3) (i32.const 1))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.le_u (local.get $i) (i32.const ${MAX_RESPONSE_HEADERS}))))))`),
      LIMITS,
      "many",
    );
    const res = await h.invoke(many, "/", {}, "req-many");
    assertEquals(res.status, 502);
    assertEquals(await res.text(), "function many sent an invalid response (request req-many)");
    assertStringIncludes(h.logsOf("req-many").at(-1)!.text, `response sets more than ${MAX_RESPONSE_HEADERS} headers`);

    const big = await h.addWasm(
      "big",
      wat(`(module ${SDK} (memory (export "memory") 2) (data (i32.const 0) "x-big")
        (func (export "big") (call $header (i32.const 0) (i32.const 5) (i32.const 8) (i32.const 70000))))`),
      LIMITS,
      "big",
    );
    const bigRes = await h.invoke(big, "/", {}, "req-big");
    assertEquals(bigRes.status, 502);
    await bigRes.body?.cancel();
    assertStringIncludes(h.logsOf("req-big").at(-1)!.text, "response headers are over 64 KiB");

    // WAGI: 6 MB of header line before any blank line.
    const cgi = await h.addWasm(
      "cgi",
      wat(`(module ${WASI} (memory (export "memory") 100) (data (i32.const 0) "X-A: ")
        (func (export "_start")
          (memory.fill (i32.const 5) (i32.const 97) (i32.const ${6 * MB}))
          (i32.store (i32.const ${6 * MB + 16}) (i32.const 0)) (i32.store (i32.const ${6 * MB + 20}) (i32.const ${
        6 * MB + 5
      }))
          (drop (call $fd_write (i32.const 1) (i32.const ${6 * MB + 16}) (i32.const 1) (i32.const ${6 * MB + 24})))))`),
      LIMITS,
    );
    const cgiRes = await h.invoke(cgi, "/", {}, "req-cgi");
    assertEquals(cgiRes.status, 502);
    await cgiRes.body?.cancel();
    assertStringIncludes(h.logsOf("req-cgi").at(-1)!.text, "CGI header block is over 64 KiB");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("response headers: the node's own (X-Request-Id, Date, Server, framing) cannot be set by a guest", async () => {
  const h = new Harness();
  try {
    const pairs = [["x-request-id", "forged"], ["Date", "forged"], ["server", "forged"], ["content-length", "999"], [
      "x-ok",
      "yes",
    ]];
    let data = "";
    let calls = "";
    let at = 0;
    for (const [k, v] of pairs) {
      data += `(data (i32.const ${at}) "${k}${v}")`;
      calls += `(call $header (i32.const ${at}) (i32.const ${k.length}) (i32.const ${
        at + k.length
      }) (i32.const ${v.length}))`;
      at += k.length + v.length;
    }
    const t = await h.addWasm(
      "forge",
      wat(`(module ${SDK} (memory (export "memory") 1) ${data} (data (i32.const 200) "body")
        (func (export "forge") ${calls} (call $write (i32.const 200) (i32.const 4))))`),
      LIMITS,
      "forge",
    );
    const res = await h.invoke(t, "/", {}, "req-node");
    assertEquals(res.status, 200);
    assertEquals(await res.text(), "body");
    assertEquals(res.headers.get("x-request-id"), null); // not the guest's to say; errors carry the node's
    assertEquals(res.headers.get("date"), null);
    assertEquals(res.headers.get("server"), null);
    assertEquals(res.headers.get("x-ok"), "yes");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("memory: a warm instance that grew past 32 MiB is dropped after its call; execution.memory holds", async () => {
  const h = new Harness();
  try {
    // Answers how many calls its instance has served; the grower also grows memory by 40 MiB each call.
    const counter = (grow: boolean) =>
      wat(`(module ${SDK} (memory (export "memory") 1 1024) (global $calls (mut i32) (i32.const 0))
        (func (export "count")
          (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
          ${grow ? "(drop (memory.grow (i32.const 640)))" : ""}
          (i32.store8 (i32.const 0) (i32.add (i32.const 48) (global.get $calls)))
          (call $write (i32.const 0) (i32.const 1))))`);
    const keeps = await h.addWasm("keeps", counter(false), LIMITS, "count");
    const grows = await h.addWasm("grows", counter(true), LIMITS, "count");
    const answers = async (
      t: typeof keeps,
    ) => [await (await h.invoke(t, "/")).text(), await (await h.invoke(t, "/")).text()];
    assertEquals(await answers(keeps), ["1", "2"]);
    assertEquals(await answers(grows), ["1", "1"]);

    // memory.grow past execution.memory (1 MiB = 16 pages) fails: the guest sees -1.
    const capped = await h.addWasm(
      "capped",
      wat(`(module ${SDK} (memory (export "memory") 1 65536)
        (func (export "capped")
          (i32.store8 (i32.const 0) (select (i32.const 70) (i32.const 71) (i32.eq (memory.grow (i32.const 16)) (i32.const -1))))
          (call $write (i32.const 0) (i32.const 1))))`),
      { ...LIMITS, memoryBytes: MB },
      "capped",
    );
    assertEquals(await (await h.invoke(capped, "/")).text(), "F");
  } finally {
    await h.runtime.close();
  }
});
