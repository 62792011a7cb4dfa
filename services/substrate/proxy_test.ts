// forward() against real servers on Unix sockets: what the container sees, what the client gets back.
import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { forward, probe, type Upstream, upstream } from "./proxy.ts";

async function withServer(
  handler: Deno.ServeHandler,
  fn: (up: Upstream) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tau-proxy-" });
  const socket = `${dir}/s.sock`;
  const server = Deno.serve({ path: socket, onListen() {} }, handler);
  const up = upstream(socket);
  try {
    await fn(up);
  } finally {
    up.pool.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

const opts = { host: "app.example.localtau", requestId: "r-1", clientIp: "127.0.0.9" };

Deno.test("proxy: origin-form path, Host, forwarded headers, body both ways, hop-by-hop headers dropped", async () => {
  await withServer(async (req) => {
    const url = new URL(req.url);
    const seen = {
      method: req.method,
      path: url.pathname + url.search,
      host: req.headers.get("host"),
      xfh: req.headers.get("x-forwarded-host"),
      xff: req.headers.get("x-forwarded-for"),
      rid: req.headers.get("x-request-id"),
      custom: req.headers.get("x-custom"),
      body: await req.text(),
    };
    const headers = new Headers({ "content-type": "application/json", connection: "close" });
    headers.append("set-cookie", "a=1");
    headers.append("set-cookie", "b=2");
    return new Response(JSON.stringify(seen), { status: 201, headers });
  }, async (up) => {
    const req = new Request("http://127.0.0.1:8080/a/b?x=1", {
      method: "POST",
      body: "hello",
      headers: { "x-custom": "yes", "keep-alive": "timeout=5" },
    });
    const res = await forward(req, up, opts);
    assertEquals(res.status, 201);
    assertEquals(await res.json(), {
      method: "POST",
      path: "/a/b?x=1",
      host: "app.example.localtau",
      xfh: "app.example.localtau",
      xff: "127.0.0.9",
      rid: "r-1",
      custom: "yes",
      body: "hello",
    });
    assertEquals(res.headers.getSetCookie(), ["a=1", "b=2"]);
    assertEquals(res.headers.get("connection"), null);
    assertEquals(res.headers.get("x-request-id"), "r-1");
    assertEquals(up.inflight, 0);
  });
});

Deno.test("proxy: streamed responses, null-body statuses and HEAD", async () => {
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/204") return new Response(null, { status: 204 });
    if (path === "/304") return new Response(null, { status: 304, headers: { etag: '"x"' } });
    const chunks = ["one ", "two ", "three"];
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        const next = chunks.shift();
        if (next === undefined) return c.close();
        await new Promise((r) => setTimeout(r, 5));
        c.enqueue(new TextEncoder().encode(next));
      },
    });
    return new Response(body);
  }, async (up) => {
    assertEquals(await (await forward(new Request("http://x/stream"), up, opts)).text(), "one two three");
    const empty = await forward(new Request("http://x/204"), up, opts);
    assertEquals([empty.status, empty.body], [204, null]);
    const notModified = await forward(new Request("http://x/304"), up, opts);
    assertEquals([notModified.status, notModified.headers.get("etag")], [304, '"x"']);
    const head = await forward(new Request("http://x/stream", { method: "HEAD" }), up, opts);
    assertEquals([head.status, head.body], [200, null]);
    assertEquals(up.inflight, 0);
  });
});

Deno.test("proxy: a socket nobody serves rejects, and probe says not ready", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tau-proxy-" });
  const up = upstream(`${dir}/none.sock`);
  try {
    await assertRejects(() => forward(new Request("http://x/"), up, opts), /No such file|refused/);
    await assertRejects(() => probe(up), /No such file|refused/);
    assertEquals(up.inflight, 0);
  } finally {
    up.pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("proxy: probe accepts any HTTP answer", async () => {
  await withServer(() => new Response("no", { status: 500 }), async (up) => {
    assertEquals(await probe(up), 500);
  });
});

Deno.test("proxy: a client that leaves mid-body is no error for the node", async () => {
  let release!: () => void;
  const later = new Promise<void>((r) => release = r);
  await withServer(() => {
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(new TextEncoder().encode("first "));
        await later;
        c.enqueue(new TextEncoder().encode("second"));
        c.close();
      },
    });
    return new Response(body);
  }, async (up) => {
    const res = await forward(new Request("http://x/"), up, opts);
    const reader = res.body!.getReader();
    assertEquals(new TextDecoder().decode((await reader.read()).value), "first ");
    await reader.cancel();
    release();
    await new Promise((r) => setTimeout(r, 50)); // the upstream ends after the cancel: nothing may throw
    assertEquals(up.inflight, 0);
  });
});

/** A server that writes raw bytes: for what Deno.serve never sends (bare LF heads, close-delimited bodies). */
async function withRawServer(answer: (request: string) => string, fn: (up: Upstream) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "tau-proxy-" });
  const listener = Deno.listen({ transport: "unix", path: `${dir}/raw.sock` });
  const serving = (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(65536);
      const n = await conn.read(buf);
      await conn.write(new TextEncoder().encode(answer(new TextDecoder().decode(buf.subarray(0, n ?? 0)))));
      conn.close();
    }
  })().catch(() => {});
  const up = upstream(`${dir}/raw.sock`);
  try {
    await fn(up);
  } finally {
    up.pool.close();
    listener.close();
    await serving;
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("proxy: bare-LF heads (CGI style) and bodies that end with the connection", async () => {
  let seen = "";
  await withRawServer((request) => {
    seen = request;
    return "HTTP/1.0 200 OK\nContent-Type: text/plain\nX-Thing: 1\n\nuntil close";
  }, async (up) => {
    const res = await forward(new Request("http://x/a?b=c"), up, opts);
    assertEquals([res.status, res.headers.get("x-thing"), await res.text()], [200, "1", "until close"]);
    assertEquals(seen.split("\r\n")[0], "GET /a?b=c HTTP/1.1", "origin-form request line");
    assertEquals(up.inflight, 0);
  });
});

Deno.test("proxy: chunked both ways, 100 Continue skipped, keep-alive reused", async () => {
  await withServer(async (req) => {
    return new Response(req.body ? (await req.text()).toUpperCase() : "none");
  }, async (up) => {
    // A body of unknown length goes out chunked (Deno.serve reads it back whole).
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("stream"));
        c.enqueue(new TextEncoder().encode("ed"));
        c.close();
      },
    });
    const res = await forward(new Request("http://x/", { method: "POST", body }), up, opts);
    assertEquals(await res.text(), "STREAMED");
    for (let i = 0; i < 5; i++) assertEquals(await (await forward(new Request("http://x/"), up, opts)).text(), "none");
    assertEquals(up.pool.idle, 1, "one request after the other: one connection, kept alive");
  });
  await withRawServer(
    () => "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    async (up) => {
      assertEquals(await (await forward(new Request("http://x/"), up, opts)).text(), "abc");
    },
  );
});

Deno.test("proxy: a kept-alive connection the container closed is replaced without an error", async () => {
  let n = 0;
  await withRawServer(
    () => `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n${(n++).toString().padStart(2, "0")}`,
    async (up) => {
      // The raw server closes every connection after one answer, though the answer allows keep-alive.
      assertEquals(await (await forward(new Request("http://x/"), up, opts)).text(), "00");
      await new Promise((r) => setTimeout(r, 20));
      assertEquals(await (await forward(new Request("http://x/"), up, opts)).text(), "01");
    },
  );
});

Deno.test("proxy: a container that accepts but never answers times out instead of hanging", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tau-proxy-" });
  const listener = Deno.listen({ transport: "unix", path: `${dir}/mute.sock` });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn); // read nothing, answer nothing
  })().catch(() => {});
  const up = upstream(`${dir}/mute.sock`);
  try {
    await assertRejects(
      () => forward(new Request("http://x/"), up, { ...opts, timeoutMs: 300 }),
      /sent no response head in time/,
    );
    assertEquals(up.inflight, 0);
  } finally {
    up.pool.close();
    listener.close();
    await accepting;
    for (const c of held) c.close();
    await Deno.remove(dir, { recursive: true });
  }
});
