/**
 * The node's listener under connection floods (issue 8, #4), against a real `tau dev` child over raw TCP: half-sent
 * heads and idle keep-alive connections are closed after the header timeout while other requests are served, the
 * connection cap makes room or answers 503, and running out of file descriptors is survived, not fatal.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { hostRequest, startCloud } from "./helpers/cloud.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Opens `n` connections that each send `head` (a request head, or part of one) and nothing more. */
async function hold(port: number, n: number, head: string): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i++) {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    if (head) await c.write(enc.encode(head));
    conns.push(c);
  }
  return conns;
}

/** Resolves with what the server sent once it closed the connection; rejects after `ms`. */
async function untilClosed(c: Deno.Conn, ms: number): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  const timer = setTimeout(() => c.close(), ms);
  try {
    while (true) {
      const n = await c.read(buf);
      if (n === null) return text;
      text += dec.decode(buf.subarray(0, n));
    }
  } catch (err) {
    if (err instanceof Deno.errors.ConnectionReset) return text;
    throw new Error(`connection still open after ${ms} ms (${(err as Error).message})`);
  } finally {
    clearTimeout(timer);
  }
}

function closeAll(conns: Deno.Conn[]) {
  for (const c of conns) {
    try {
      c.close();
    } catch { /* closed by the server's side already */ }
  }
}

/** One request on a fresh connection; the time it took, for the starvation bounds. */
async function timed(url: string): Promise<{ status: number; ms: number }> {
  const start = performance.now();
  const res = await fetch(url);
  await res.body?.cancel();
  return { status: res.status, ms: performance.now() - start };
}

Deno.test("half-sent and idle connections are closed after the header timeout; others are served meanwhile", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-edge-conn-" });
  const cloud = await startCloud(join(work, "data"), { args: ["--header-timeout", "1s"] });
  try {
    const halfSent = await hold(cloud.port, 300, "GET / HTTP/1.1\r\nHost: app.localtau\r\nX-Slow: ");
    const silent = await hold(cloud.port, 20, "");
    // A keep-alive connection that sent one whole request, then nothing.
    const [idle] = await hold(cloud.port, 1, "GET /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");

    // While they are held, the control plane and the gateway still answer (a bound on starvation, not a timing).
    const api = await timed(`${cloud.url}/api/projects`);
    assertEquals(api.status, 200);
    assert(api.ms < 5000, `the API took ${api.ms.toFixed(0)} ms while 321 connections were held`);
    const gw = await hostRequest(cloud.port, "nobody.localtau", "/");
    assertEquals(gw.status, 404, "the gateway answers too");

    // Then every one of them is closed by the node: each read ends (generous bound; the timeout is 1 s).
    const ends = await Promise.all([...halfSent, ...silent].map((c) => untilClosed(c, 20_000)));
    assertEquals(ends.filter((t) => t === "").length, 320, "half-sent and silent connections end without an answer");
    const idleText = await untilClosed(idle, 20_000);
    assertStringIncludes(idleText, "HTTP/1.1 200 OK", "the idle connection got its answer first");
    assertEquals(cloud.output().includes("error"), false, cloud.output());
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("at the connection cap, a never-used connection makes room; with none, new ones get 503", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-edge-cap-" });
  const cloud = await startCloud(join(work, "data"), { args: ["--max-connections", "40", "--header-timeout", "4s"] });
  try {
    // 40 keep-alive connections that each got an answer and stay open: in use, so not taken away before the timeout.
    const inUse = await hold(cloud.port, 40, "GET /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    for (const c of inUse) {
      const buf = new Uint8Array(4096);
      assertStringIncludes(dec.decode(buf.subarray(0, (await c.read(buf))!)), "200 OK");
    }
    const [refused] = await hold(cloud.port, 1, "GET /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const answer = await untilClosed(refused, 10_000);
    assertStringIncludes(answer, "HTTP/1.1 503 Service Unavailable");
    assertStringIncludes(answer, "retry-after: 1");
    assertStringIncludes(answer, "node busy: too many open connections, retry shortly\n");
    closeAll(inUse);

    // 40 slow-loris connections that never finish a head: each new client takes the oldest one's place.
    await new Promise((r) => setTimeout(r, 500)); // the node sees the 40 closes
    const loris = await hold(cloud.port, 40, "GET / HTTP/1.1\r\nHost: app.localtau\r\n");
    await new Promise((r) => setTimeout(r, 1500)); // older than one sweep period (1 s at a 4 s timeout)
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${cloud.url}/api/projects`);
      assertEquals(res.status, 200);
      await res.body?.cancel();
    }
    const firstEnds = await untilClosed(loris[0], 10_000);
    assertEquals(firstEnds, "", "the oldest slow-loris connection was closed, without an answer");
    closeAll(loris);
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test("running out of file descriptors is logged and survived: the node answers once connections close", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-edge-fds-" });
  // 256 descriptors, and a cap that does not stop accepting first: accept itself fails with EMFILE.
  const cloud = await startCloud(join(work, "data"), {
    wrap: ["prlimit", "--nofile=256:256"],
    args: ["--max-connections", "1000", "--header-timeout", "1s"],
  });
  try {
    // The node's workers (compiler, config parser) load their modules in the background after the ready line; a
    // module load that meets EMFILE is a start-up failure of its own, not what this test is about: let them finish.
    await new Promise((r) => setTimeout(r, 10_000));
    const flood = await hold(cloud.port, 400, "GET / HTTP/1.1\r\nHost: app.localtau\r\n");
    const api = await timed(`${cloud.url}/api/projects`);
    assertEquals(api.status, 200);
    assert(api.ms < 20_000, `the API took ${api.ms.toFixed(0)} ms after the flood`);
    closeAll(flood);
    const again = await timed(`${cloud.url}/api/projects`);
    assertEquals(again.status, 200);
    const out = cloud.output();
    assertStringIncludes(out, "--max-connections 1000 is more than the open-file limit (256) leaves room for");
    assertStringIncludes(out, "http: accept failed");
    assertStringIncludes(out, "Too many open files");
    assertEquals(out.includes("Uncaught"), false, out);
    assertEquals(Deno.readTextFileSync(`/proc/${cloud.pid}/status`).includes("State:\tZ"), false, "still running");
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true });
  }
});
