// The outbound HTTP client of functions (outbound.ts) on the wire: the policy applied to URLs and to every address a
// name resolves to, limits, deadlines, malformed requests and errors. Every server is on 127.0.0.x; host names
// resolve through a fake resolver (nothing here sends a DNS query). Redirects are in redirects_test.ts, the pinning
// tunnel in tunnel_test.ts.
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../tests/helpers/assert.ts";
import type { Resolver } from "./outbound.ts";
import { client, echo, fakeResolver, get, hostError, serve, text } from "./testing.ts";

Deno.test("loopback is denied without an allow-list, however the URL spells it", async () => {
  const server = serve("127.0.0.1");
  try {
    const out = client();
    const p = server.port;
    const urls = [
      `http://127.0.0.1:${p}/`,
      `http://127.1:${p}/`,
      `http://2130706433:${p}/`,
      `http://0x7f000001:${p}/`,
      `http://0x7f.1:${p}/`,
      `http://0177.0.0.1:${p}/`,
      `http://127.0.0.1.:${p}/`,
      `http://[::1]:${p}/`,
      `http://[::ffff:127.0.0.1]:${p}/`,
      `http://[::ffff:7f00:1]:${p}/`,
      `http://[0:0:0:0:0:0:0:1]:${p}/`,
      `http://localhost:${p}/`,
      `http://LOCALHOST.:${p}/`,
      `http://api.localhost:${p}/`,
      `https://127.0.0.1:${p}/`,
    ];
    for (const url of urls) {
      await assertRejects(() => out.fetch(get(url)), hostError("denied", /loopback/));
    }
    const err = await assertRejects(() => out.fetch(get(`http://2130706433:${p}/x`)), hostError("denied"));
    assertEquals(
      err.message,
      `denied: 127.0.0.1 is a loopback address; add "127.0.0.1:${p}" to the function's outbound allow-list to reach it`,
    );
    const v6 = await assertRejects(() => out.fetch(get(`http://[::ffff:7f00:1]:${p}/`)), hostError("denied"));
    assertStringIncludes(v6.message, "[::ffff:7f00:1] is an IPv4-mapped form of 127.0.0.1, a loopback address");
    const named = await assertRejects(() => out.fetch(get(`http://localhost:${p}/`)), hostError("denied"));
    assertStringIncludes(named.message, "localhost resolves to 127.0.0.1, a loopback address");
    assertStringIncludes(named.message, `add "localhost:${p}"`);
    assertEquals(server.seen.length, 0, "the server never got a request");
  } finally {
    await server.close();
  }
});

Deno.test("an allowed address and port is reached; another port on it stays denied", async () => {
  const a = serve("127.0.0.1");
  const b = serve("127.0.0.1");
  try {
    const out = client({ allow: [`127.0.0.1:${a.port}`] });
    const res = await out.fetch({
      method: "POST",
      url: a.url("/echo?q=1"),
      headers: [["X-Test", "1"], ["Content-Type", "text/plain"], ["Host", "evil.example"]],
      body: new TextEncoder().encode("hello"),
    });
    assertEquals(res.status, 200);
    assertEquals(text(res.body), "POST /echo?q=1");
    assertEquals(res.url, a.url("/echo?q=1"));
    assert(res.headers.every(([name]) => name === name.toLowerCase()), "header names are lowercase");
    assert(res.headers.some(([n, v]) => n === "x-echo" && v === "yes"), "response headers are pairs");
    assertEquals(a.seen[0].body, "hello");
    assertEquals(a.seen[0].host, `127.0.0.1:${a.port}`, "the guest cannot set Host");
    await assertRejects(() => out.fetch(get(b.url())), hostError("denied", new RegExp(`127\\.0\\.0\\.1:${b.port}`)));
    assertEquals(b.seen.length, 0);
    // The same address by another spelling is the same address.
    const again = await out.fetch(get(`http://2130706433:${a.port}/x`));
    assertEquals(text(again.body), "GET /x");
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("host names: every resolved address is checked, and the request goes to the address that was checked", async () => {
  const a = serve("127.0.0.1");
  const decoy = serve("127.0.0.2");
  try {
    const calls: string[] = [];
    let lookups = 0;
    const table: Record<string, string[]> = {
      "internal.test": ["10.0.0.1"],
      "mixed.test": ["93.184.215.14", "2606:4700::1", "10.0.0.1"],
      "mapped.test": ["::ffff:192.168.0.10"],
      "empty.test": [],
    };
    const resolve: Resolver = (hostname, opts) => {
      if (hostname === "svc.test") {
        // The first answer is checked and used; a later one (a rebinding) would point elsewhere.
        calls.push(hostname);
        return Promise.resolve(lookups++ === 0 ? ["127.0.0.1"] : ["127.0.0.2"]);
      }
      return fakeResolver(table, calls)(hostname, opts);
    };
    const out = client({ allow: [`svc.test:${a.port}`], resolve });
    await assertRejects(
      () => out.fetch(get("http://internal.test/")),
      hostError(
        "denied",
        /^denied: internal\.test resolves to 10\.0\.0\.1, a private address; add "internal\.test:80"/,
      ),
    );
    await assertRejects(
      () => out.fetch(get("https://mixed.test/")),
      hostError("denied", /mixed\.test resolves to 10\.0\.0\.1/),
    );
    await assertRejects(
      () => out.fetch(get("http://mapped.test/")),
      hostError("denied", /IPv4-mapped form of 192\.168\.0\.10/),
    );
    await assertRejects(
      () => out.fetch(get("http://empty.test/")),
      hostError("failed", /could not resolve empty\.test/),
    );
    await assertRejects(
      () => out.fetch(get("http://unknown.test/")),
      hostError("failed", /could not resolve unknown\.test/),
    );

    const res = await out.fetch(get(`http://svc.test:${a.port}/pinned`));
    assertEquals(text(res.body), "GET /pinned");
    assertEquals(res.url, `http://svc.test:${a.port}/pinned`);
    assertEquals(a.seen.map((s) => s.host), [`svc.test:${a.port}`], "the origin sees the name in Host");
    assertEquals(calls.filter((c) => c === "svc.test").length, 1, "one lookup per hop: fetch never resolves the name");
    assertEquals(decoy.seen.length, 0);
    // Allowed on its port only.
    await assertRejects(() => out.fetch(get(`http://svc.test:${decoy.port}/`)), hostError("denied"));
    assertEquals(decoy.seen.length, 0);
  } finally {
    await a.close();
    await decoy.close();
  }
});

Deno.test("a response body over maxResponseBytes is too-large, and an endless one stops being read", async () => {
  const chunk = new Uint8Array(1000).fill(97);
  const a = serve("127.0.0.1", async (_req, url) => {
    switch (url.pathname) {
      case "/big":
        return new Response(new Uint8Array(5001).fill(98));
      case "/exact":
        return new Response(new Uint8Array(5000).fill(99));
      case "/gzip": {
        const gz = new Blob([new Uint8Array(20000).fill(100)]).stream().pipeThrough(new CompressionStream("gzip"));
        return new Response(await new Response(gz).bytes(), { headers: { "content-encoding": "gzip" } });
      }
      case "/small-gzip": {
        const gz = new Blob(["hello hello hello"]).stream().pipeThrough(new CompressionStream("gzip"));
        return new Response(await new Response(gz).bytes(), { headers: { "content-encoding": "gzip" } });
      }
      default: // endless, no length
        return new Response(new ReadableStream({ pull: (ctl) => ctl.enqueue(chunk) }));
    }
  });
  try {
    const out = client({ allow: [`127.0.0.1:${a.port}`], maxResponseBytes: 5000 });
    await assertRejects(
      () => out.fetch(get(a.url("/big"))),
      hostError("too-large", new RegExp(`127\\.0\\.0\\.1:${a.port} is larger than 5000 bytes`)),
    );
    assertEquals((await out.fetch(get(a.url("/exact")))).body.length, 5000);
    await assertRejects(() => out.fetch(get(a.url("/endless"))), hostError("too-large"));
    // The limit is on what the guest gets: the decoded body.
    await assertRejects(() => out.fetch(get(a.url("/gzip"))), hostError("too-large"));
    const small = await out.fetch(get(a.url("/small-gzip")));
    assertEquals(text(small.body), "hello hello hello");
    assert(
      !small.headers.some(([n]) => n === "content-encoding" || n === "content-length"),
      "decoded: no stale headers",
    );
  } finally {
    await a.close();
  }
});

Deno.test("an aborted signal or a deadline ends a request with timeout", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  let arrived!: () => void;
  const gotRequest = new Promise<void>((r) => arrived = r);
  const a = serve("127.0.0.1", async () => {
    arrived();
    await released;
    return new Response("late");
  });
  try {
    const out = client({ allow: [`127.0.0.1:${a.port}`] });
    const ctl = new AbortController();
    const pending = out.fetch(get(a.url("/hang")), { signal: ctl.signal });
    await gotRequest;
    ctl.abort();
    await assertRejects(() => pending, hostError("timeout", new RegExp(`127\\.0\\.0\\.1:${a.port} was aborted`)));
    await assertRejects(
      () => out.fetch(get(a.url("/hang")), { timeoutMs: 50 }),
      hostError("timeout", /took longer than 50 ms/),
    );
    await assertRejects(
      () => client({ allow: [`127.0.0.1:${a.port}`], timeoutMs: 50 }).fetch(get(a.url("/hang"))),
      hostError("timeout"),
    );
    const already = new AbortController();
    already.abort();
    await assertRejects(() => out.fetch(get(a.url("/")), { signal: already.signal }), hostError("timeout"));
    // A lookup that never answers is cut short too.
    const stuck = client({ resolve: () => new Promise(() => {}) });
    const lookup = new AbortController();
    const waiting = stuck.fetch(get("http://slow.test/"), { signal: lookup.signal });
    lookup.abort();
    await assertRejects(() => waiting, hostError("timeout", /slow\.test/));
  } finally {
    release();
    await a.close();
  }
});

Deno.test("only http: and https: URLs, valid methods, headers and bodies", async () => {
  const out = client({ allow: ["0.0.0.0/0", "::/0"] });
  for (
    const url of ["ftp://example.com/f", "file:///etc/passwd", "data:text/plain,hi", "ws://127.0.0.1/", "javascript:1"]
  ) {
    await assertRejects(() => out.fetch(get(url)), hostError("invalid", /URLs are not supported/));
  }
  await assertRejects(() => out.fetch(get("not a url")), hostError("invalid", /is not a URL/));
  await assertRejects(() => out.fetch(get("http://")), hostError("invalid"));
  const req = (method: string, body: Uint8Array | null = null, headers: [string, string][] = []) => ({
    method,
    url: "http://127.0.0.1:1/",
    headers,
    body,
  });
  for (const method of ["GE T", "", "GET\r\n", "(GET)"]) {
    await assertRejects(() => out.fetch(req(method)), hostError("invalid", /is not an HTTP method/));
  }
  for (const method of ["CONNECT", "trace", "TRACK"]) {
    await assertRejects(() => out.fetch(req(method)), hostError("invalid", /method is not allowed/));
  }
  await assertRejects(() => out.fetch(req("GET", new Uint8Array([1]))), hostError("invalid", /cannot have a body/));
  await assertRejects(() => out.fetch(req("HEAD", new Uint8Array([1]))), hostError("invalid"));
  await assertRejects(() => out.fetch(req("GET", null, [["a b", "c"]])), hostError("invalid", /header/));
  await assertRejects(() => out.fetch(req("GET", null, [["x", "a\r\nb"]])), hostError("invalid", /header/));
});

Deno.test("credentials in the URL are sent as Basic auth", async () => {
  const a = serve("127.0.0.1");
  try {
    const out = client({ allow: [`127.0.0.1:${a.port}`] });
    await out.fetch(get(`http://user:pa%20ss@127.0.0.1:${a.port}/`));
    assertEquals(a.seen[0].authorization, `Basic ${btoa("user:pa ss")}`);
  } finally {
    await a.close();
  }
});

Deno.test("HEAD answers and 308 redirects", async () => {
  const a = serve("127.0.0.1", (req, url) => {
    if (url.pathname === "/308") return new Response(null, { status: 308, headers: { location: "/final" } });
    if (req.method === "HEAD") return new Response(null, { headers: { "content-length": "999999" } });
    return echo(req, url);
  });
  try {
    const out = client({ allow: [`127.0.0.1:${a.port}`], maxResponseBytes: 10 });
    const head = await out.fetch({ method: "HEAD", url: a.url("/big"), headers: [], body: null });
    assertEquals([head.status, head.body.length], [200, 0], "a HEAD's content-length is not a body over the limit");
    const moved = await out.fetch({ method: "PUT", url: a.url("/308"), headers: [], body: new Uint8Array([1]) });
    assertEquals(text(moved.body), "PUT /final");
  } finally {
    await a.close();
  }
});
