import { ExecutorPool } from "./executor_pool.ts";
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { fixtureWasm, Harness, LIMITS } from "./test_support.ts";

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
