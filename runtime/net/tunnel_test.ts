// The per-hop tunnel (tunnel.ts), through the client: HTTPS to the checked address with the URL's name for SNI and
// the certificate, every resolved address tried in turn, one pinned connection and one HttpClient per request and hop.
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { SVC_CERT, SVC_KEY, TEST_CA } from "../../tests/fixtures/outbound_tls.ts";
import { client, echo, fakeResolver, get, hostError, serve, text } from "./testing.ts";

Deno.test("HTTPS goes to the checked address, with the URL's name for SNI and the certificate", async () => {
  const tls = serve("127.0.0.1", echo, { cert: SVC_CERT, key: SVC_KEY });
  try {
    const resolve = fakeResolver({ "svc.example": ["127.0.0.1"], "other.example": ["127.0.0.1"] });
    const out = client({ allow: ["svc.example", "other.example"], resolve, caCerts: [TEST_CA] });
    const res = await out.fetch(get(`https://svc.example:${tls.port}/secure`));
    assertEquals([res.status, text(res.body), res.url], [200, "GET /secure", `https://svc.example:${tls.port}/secure`]);
    // The certificate is checked against the name in the URL, not the address the tunnel dialled.
    await assertRejects(
      () => out.fetch(get(`https://other.example:${tls.port}/`)),
      hostError("failed", /other\.example.*certificate/),
    );
    // Without the test CA, the certificate is not trusted.
    await assertRejects(
      () => client({ allow: ["svc.example"], resolve }).fetch(get(`https://svc.example:${tls.port}/`)),
      hostError("failed"),
    );
    assertEquals(tls.seen.length, 1);
  } finally {
    await tls.close();
  }
});

Deno.test("a refused connection fails, naming the address; every resolved address is tried in turn", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const up = serve("127.0.0.1");
  try {
    const out = client({ allow: ["127.0.0.0/8"] });
    await assertRejects(
      () => out.fetch(get(`http://127.0.0.1:${port}/`)),
      hostError("failed", new RegExp(`could not connect to 127\\.0\\.0\\.1:${port}`)),
    );
    // First address refuses, the second answers.
    const resolve = fakeResolver({ "two.test": ["127.0.0.4", "127.0.0.1"] });
    const two = client({ allow: ["127.0.0.0/8"], resolve });
    assertEquals(text((await two.fetch(get(`http://two.test:${up.port}/`))).body), "GET /");
  } finally {
    await up.close();
  }
});

Deno.test("concurrent requests each get their own pinned connection", async () => {
  const a = serve("127.0.0.1");
  try {
    const resolve = fakeResolver({ "svc.test": ["127.0.0.1"] });
    const out = client({ allow: [`127.0.0.1:${a.port}`, "svc.test"], resolve });
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          out.fetch(get(i % 2 ? a.url(`/n/${i}`) : `http://svc.test:${a.port}/n/${i}`)).then((r) => text(r.body)),
      ),
    );
    assertEquals(results, Array.from({ length: 20 }, (_, i) => `GET /n/${i}`));
  } finally {
    await a.close();
  }
});

Deno.test("fetchImpl stands in for fetch: redirects stay manual and each hop has its own client", async () => {
  const inits: RequestInit[] = [];
  const urls: string[] = [];
  const fetchImpl: typeof fetch = (input, init) => {
    urls.push(String(input));
    inits.push(init ?? {});
    return Promise.resolve(
      urls.length === 1
        ? new Response(null, { status: 302, headers: { location: "http://127.0.0.1:9/two" } })
        : new Response("done"),
    );
  };
  const out = client({ allow: ["127.0.0.1"], fetchImpl });
  const res = await out.fetch(get("http://127.0.0.1:8/one"));
  assertEquals([text(res.body), res.url], ["done", "http://127.0.0.1:9/two"]);
  assertEquals(urls, ["http://127.0.0.1:8/one", "http://127.0.0.1:9/two"]);
  assert(inits.every((i) => i.redirect === "manual"), "redirects are never left to fetch");
  const clients = inits.map((i) => (i as RequestInit & { client?: Deno.HttpClient }).client);
  assert(clients[0] && clients[1] && clients[0] !== clients[1], "one client per hop");
});
