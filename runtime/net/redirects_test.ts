// Redirects in the outbound client (outbound.ts): followed by the client, never by fetch, and checked again on every
// hop; the method, body and credentials a browser would send on; a limit on their number.
import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { client, echo, fakeResolver, get, hostError, serve, text } from "./testing.ts";

Deno.test("redirects are checked on every hop: to a denied address the request stops", async () => {
  const target = serve("127.0.0.2");
  const internal = { "internal.test": ["10.9.9.9"] };
  const a = serve("127.0.0.1", (_req, url) => {
    const to = url.pathname === "/to-ip" ? target.url("/secret") : "http://internal.test/metadata";
    return new Response(null, { status: 302, headers: { location: to } });
  });
  try {
    const out = client({ allow: [`127.0.0.1:${a.port}`], resolve: fakeResolver(internal) });
    await assertRejects(
      () => out.fetch(get(a.url("/to-ip"))),
      hostError(
        "denied",
        new RegExp(`^denied: 127\\.0\\.0\\.2 \\(redirected from 127\\.0\\.0\\.1:${a.port}\\) is a loopback`),
      ),
    );
    assertEquals(target.seen.length, 0, "the second server never got the request");
    await assertRejects(
      () => out.fetch(get(a.url("/to-name"))),
      hostError("denied", /internal\.test \(redirected from .*\) resolves to 10\.9\.9\.9, a private address/),
    );
    assertEquals(a.seen.length, 2);
  } finally {
    await a.close();
    await target.close();
  }
});

Deno.test("redirects to allowed hosts are followed, with the method and headers browsers would send", async () => {
  const c = serve("127.0.0.3");
  const a = serve("127.0.0.1", (req, url) => {
    const redirects: Record<string, [number, string]> = {
      "/abs": [302, c.url("/final?x=1")],
      "/dir/rel": [301, "../final"],
      "/303": [303, "/final"],
      "/307": [307, "/final"],
      "/302": [302, "/final"],
      "/cross": [302, c.url("/final")],
      "/same": [302, "/final"],
      "/ftp": [302, "ftp://example.com/file"],
    };
    const to = redirects[url.pathname];
    if (to) return new Response("moved", { status: to[0], headers: { location: to[1] } });
    if (url.pathname === "/no-location") return new Response("no location", { status: 302 });
    return echo(req, url);
  });
  const post = (url: string, headers: [string, string][] = []) => ({
    method: "POST",
    url,
    headers: [["content-type", "text/plain"] as [string, string], ...headers],
    body: new TextEncoder().encode("payload"),
  });
  try {
    const out = client({ allow: [`127.0.0.1:${a.port}`, "127.0.0.3/32"] });
    const abs = await out.fetch(get(a.url("/abs")));
    assertEquals([abs.status, text(abs.body), abs.url], [200, "GET /final?x=1", c.url("/final?x=1")]);
    const rel = await out.fetch(get(a.url("/dir/rel")));
    assertEquals([text(rel.body), rel.url], ["GET /final", a.url("/final")]);

    a.seen.length = 0;
    assertEquals(text((await out.fetch(post(a.url("/303")))).body), "GET /final");
    assertEquals(a.seen[1].body, "", "303: GET without the body");
    a.seen.length = 0;
    assertEquals(text((await out.fetch(post(a.url("/307")))).body), "POST /final");
    assertEquals(a.seen[1].body, "payload", "307: the same method and body");
    a.seen.length = 0;
    assertEquals(text((await out.fetch(post(a.url("/302")))).body), "GET /final");
    assertEquals(a.seen[1].body, "");
    const put303 = await out.fetch({ ...post(a.url("/303")), method: "PUT" });
    assertEquals(text(put303.body), "GET /final");

    const auth: [string, string][] = [["Authorization", "Bearer secret"]];
    a.seen.length = 0;
    await out.fetch(get(a.url("/same"), auth));
    assertEquals(a.seen.map((s) => s.authorization), ["Bearer secret", "Bearer secret"], "same origin: kept");
    c.seen.length = 0;
    await out.fetch(get(a.url("/cross"), auth));
    assertEquals(c.seen.map((s) => s.authorization), [null], "another origin: Authorization dropped");

    await assertRejects(() => out.fetch(get(a.url("/ftp"))), hostError("failed", /unsupported ftp: URL/));
    const stay = await out.fetch(get(a.url("/no-location")));
    assertEquals([stay.status, text(stay.body)], [302, "no location"]);
  } finally {
    await a.close();
    await c.close();
  }
});

Deno.test("too many redirects fail", async () => {
  const a = serve("127.0.0.1", (_req, url) => {
    const n = Number(url.pathname.split("/")[2] ?? 0);
    return new Response(null, { status: 302, headers: { location: `/loop/${n + 1}` } });
  });
  try {
    const out = client({ allow: [`127.0.0.1:${a.port}`], maxRedirects: 3 });
    await assertRejects(
      () => out.fetch(get(a.url("/loop/0"))),
      hostError("failed", /too many redirects \(more than 3\)/),
    );
    assertEquals(a.seen.map((s) => new URL(s.url).pathname), ["/loop/0", "/loop/1", "/loop/2", "/loop/3"]);
    a.seen.length = 0;
    await assertRejects(
      () => client({ allow: [`127.0.0.1:${a.port}`] }).fetch(get(a.url("/loop/0"))),
      hostError("failed"),
    );
    assertEquals(a.seen.length, 11, "the default: 10 redirects");
  } finally {
    await a.close();
  }
});
