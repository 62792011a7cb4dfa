// forward() against real servers on Unix sockets: what the container sees, what the client gets back.
import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { forward, probe, type Upstream, upstreamAgent } from "./proxy.ts";

async function withServer(
  handler: Deno.ServeHandler,
  fn: (up: Upstream) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tau-proxy-" });
  const socket = `${dir}/s.sock`;
  const server = Deno.serve({ path: socket, onListen() {} }, handler);
  const up: Upstream = { socket, agent: upstreamAgent(), inflight: 0 };
  try {
    await fn(up);
  } finally {
    up.agent.destroy();
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
  const up: Upstream = { socket: `${dir}/none.sock`, agent: upstreamAgent(), inflight: 0 };
  try {
    await assertRejects(() => forward(new Request("http://x/"), up, opts), /ENOENT|ECONNREFUSED|No such file/);
    await assertRejects(() => probe(up), /ENOENT|ECONNREFUSED|No such file/);
    assertEquals(up.inflight, 0);
  } finally {
    up.agent.destroy();
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
