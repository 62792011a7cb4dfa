import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { Harness, LIMITS } from "./test_support.ts";

const HELLO = `
import { Request, Response, log } from "tau-sdk";
export function hello(): void {
  const req = new Request();
  log("hello called");
  new Response().status(200).header("content-type", "text/plain").send("hello " + req.method + " " + req.path);
}`;

const ECHO = `
import { Request, Response } from "tau-sdk";
export function echo(): void {
  const req = new Request();
  const status = req.queryParam("status");
  const res = new Response();
  if (status !== null) res.status(I32.parseInt(status));
  const x = req.header("x-test");
  const id = req.param("id");
  res.header("x-echo", x === null ? "(none)" : x);
  res.send("id=" + (id === null ? "(none)" : id) + " query=" + req.query + " body=" + req.text());
}`;

const BOOM = `
import { log } from "tau-sdk";
export function boom(): void {
  log("about to fail");
  throw new Error("kaboom");
}`;

const SPIN = `
let counter: i32 = 0;
export function spin(): void {
  while (true) counter++;
}`;

const HOG = `
const kept = new Array<ArrayBuffer>();
export function hog(): void {
  while (true) kept.push(new ArrayBuffer(256 * 1024));
}`;

Deno.test("SDK: hello answers, logs, and its warm instance is reused", async () => {
  const h = new Harness();
  try {
    const t = await h.addAssemblyScript("hello", HELLO, LIMITS);
    for (const id of ["r1", "r2"]) {
      const res = await h.invoke(t, "/greet?x=1", {}, id);
      assertEquals(res.status, 200);
      assertEquals(res.headers.get("content-type"), "text/plain");
      assertEquals(await res.text(), "hello GET /greet");
      assertEquals(h.logsOf(id).map((l) => [l.fn, l.stream, l.text]), [["hello", "log", "hello called"]]);
    }
  } finally {
    await h.runtime.close();
  }
});

Deno.test("SDK: route params, query, headers and body round-trip", async () => {
  const h = new Harness();
  try {
    const t = await h.addAssemblyScript("echo", ECHO, LIMITS);
    const req = new Request("http://fn.test/users/42?status=201&a=b", {
      method: "POST",
      headers: { "x-test": "héllo" },
      body: "payload ✓",
    });
    const res = await h.invoke(t, req, { id: "42" });
    assertEquals(res.status, 201);
    assertEquals(res.headers.get("x-echo"), "héllo");
    assertEquals(await res.text(), "id=42 query=status=201&a=b body=payload ✓");

    const bare = await h.invoke(t, "/users");
    assertEquals(bare.status, 200);
    assertEquals(bare.headers.get("x-echo"), "(none)");
    assertEquals(await bare.text(), "id=(none) query= body=");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("SDK: a trap answers 500 with the request id and logs the abort message", async () => {
  const h = new Harness();
  try {
    const t = await h.addAssemblyScript("boom", BOOM, LIMITS);
    const res = await h.invoke(t, "/", {}, "req-trap");
    assertEquals(res.status, 500);
    assertEquals(res.headers.get("x-request-id"), "req-trap");
    assertEquals(await res.text(), "function boom failed (request req-trap)");
    const logs = h.logsOf("req-trap");
    assertEquals(logs[0].text, "about to fail");
    assertEquals(logs[1].stream, "trap");
    assertStringIncludes(logs[1].text, "kaboom");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("SDK: an infinite loop answers 504 while other functions keep answering first", async () => {
  const h = new Harness({ executors: 1 });
  try {
    const spin = await h.addAssemblyScript("spin", SPIN, { ...LIMITS, timeoutMs: 400 });
    const hello = await h.addAssemblyScript("hello", HELLO, LIMITS);
    const order: string[] = [];
    const looping = h.invoke(spin, "/", {}, "req-loop").then((r) => (order.push("spin"), r));
    const other = h.invoke(hello, "/").then((r) => (order.push("hello"), r));
    const [loopRes, otherRes] = await Promise.all([looping, other]);
    assertEquals(order, ["hello", "spin"]);
    assertEquals(otherRes.status, 200);
    await otherRes.body?.cancel();
    assertEquals(loopRes.status, 504);
    assertEquals(await loopRes.text(), "function spin timed out after 400ms (request req-loop)");
    // Pinned to the executor now: the next call times out there as well, and the serving thread stays free.
    const again = await h.invoke(spin, "/", {}, "req-loop-2");
    assertEquals(again.status, 504);
    await again.body?.cancel();
    assert(h.logsOf("req-loop").some((l) => l.stream === "trap" && l.text.includes("timed out")));
  } finally {
    await h.runtime.close();
  }
});

Deno.test("SDK: growing past execution.memory traps with 500", async () => {
  const h = new Harness();
  try {
    const t = await h.addAssemblyScript("hog", HOG, { timeoutMs: 2000, memoryBytes: 2 * 1024 * 1024 });
    const res = await h.invoke(t, "/", {}, "req-hog");
    assertEquals(res.status, 500);
    await res.body?.cancel();
    assert(h.logsOf("req-hog").some((l) => l.stream === "trap"));
  } finally {
    await h.runtime.close();
  }
});

Deno.test("SDK: a missing export is a clear 500", async () => {
  const h = new Harness();
  try {
    const t = await h.addAssemblyScript("hello", HELLO, LIMITS);
    const res = await h.invoke({ ...t, call: "nope" }, "/", {}, "req-missing");
    assertEquals(res.status, 500);
    assertStringIncludes(await res.text(), `module exports neither "nope" (execution.call) nor "_start"`);
  } finally {
    await h.runtime.close();
  }
});

const PIECES = `
import { Request, Response } from "tau-sdk";
export function pieces(): void {
  const req = new Request();
  const res = new Response();
  const kind = req.queryParam("kind");
  if (kind == "text") {
    res.send("héllo").send(" wörld ").send("€");
  } else if (kind == "split") {
    // "é" cut in two between writes: neither write is valid UTF-8 alone.
    const a = new Uint8Array(2); a[0] = 0x68; a[1] = 0xc3;
    const b = new Uint8Array(2); b[0] = 0xa9; b[1] = 0x21;
    res.sendBytes(a).sendBytes(b);
  } else if (kind == "binary") {
    const a = new Uint8Array(4); a[0] = 0xff; a[1] = 0x00; a[2] = 0x80; a[3] = 0x41;
    res.send("ok").sendBytes(a);
  } else {
    const b = new Uint8Array(66000);
    b.fill(0x78);
    res.send("start ").sendBytes(b);
  }
}`;

Deno.test("SDK: bodies written in pieces (text, UTF-8 cut between writes, binary, past 64 KiB) arrive byte for byte", async () => {
  const h = new Harness();
  try {
    const t = await h.addAssemblyScript("pieces", PIECES, { ...LIMITS, timeoutMs: 60_000 });
    const bytes = async (kind: string) => new Uint8Array(await (await h.invoke(t, `/?kind=${kind}`)).arrayBuffer());
    const utf8 = (s: string) => new TextEncoder().encode(s);
    assertEquals(await bytes("text"), utf8("héllo wörld €"));
    assertEquals(await bytes("split"), utf8("hé!"));
    assertEquals(await bytes("binary"), new Uint8Array([0x6f, 0x6b, 0xff, 0x00, 0x80, 0x41]));
    const big = await h.invoke(t, "/?kind=big");
    const text = await big.text();
    assertEquals([big.status, text.length, text.slice(0, 60)], [200, 66006, "start " + "x".repeat(54)]);
    assertEquals(text, "start " + "x".repeat(66000));
  } finally {
    await h.runtime.close();
  }
});

const TWO_EXPORTS = `
import { Response } from "tau-sdk";
let calls: i32 = 0;
export function first(): void {
  calls++;
  new Response().send("first " + calls.toString());
}
export function second(): void {
  calls++;
  new Response().send("second " + calls.toString());
}`;

Deno.test("SDK: one module deployed as several functions: each its own export and its own warm memory", async () => {
  const h = new Harness();
  try {
    const a = await h.addAssemblyScript("first", TWO_EXPORTS, LIMITS);
    // The same prepared bytes (one CID) as another function, and in another project.
    const self = (project: string, id: string) => ({ project, application: "", id, branch: "main", commit: "c" });
    const first = { ...a, self: self("p", "f1") };
    const second = { ...a, name: "second", call: "second", self: self("p", "f2") };
    const elsewhere = { ...a, self: self("q", "f1") };
    const text = async (t: typeof first) => await (await h.invoke(t, "/")).text();
    assertEquals(await text(first), "first 1");
    assertEquals(await text(second), "second 1", "its own export, and not first's memory");
    assertEquals(await text(first), "first 2");
    assertEquals(await text(elsewhere), "first 1", "another project's function never sees this one's memory");
    assertEquals(await text(second), "second 2");
  } finally {
    await h.runtime.close();
  }
});
