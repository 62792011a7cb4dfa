/**
 * Seer's listeners over real sockets on loopback (UDP and TCP), answering from a fixed view of a cloud: what a
 * resolver or `dig` gets, and what malformed, oversized, pipelined or idle traffic does to the server.
 */
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import * as dns from "@dnsquery/dns-packet";
import { startDnsServer } from "./server.ts";
import { answer, type CloudView } from "./zone.ts";
import {
  describe,
  dig,
  frame,
  hasDig,
  queryBytes,
  tcpQuery,
  tcpRaw,
  udpQuery,
  udpRaw,
} from "../../tests/helpers/dns.ts";

const HOST = "127.0.0.1";
let gateways = ["127.0.0.11", "127.0.0.12"];
const view: CloudView = {
  cloud: "cloud.test",
  served: (n) => n === "api.shop.g.cloud.test",
  servedBelow: () => false,
  addresses: (s) => s === "gateway" ? gateways : [],
  serial: () => 7,
};

async function withServer(fn: (port: number) => Promise<void>, tcpIdleMs = 2_000) {
  const server = await startDnsServer({ hostname: HOST, port: 0, answer: (q) => answer(view, q), tcpIdleMs });
  try {
    await fn(server.port);
  } finally {
    await server.close();
  }
}

Deno.test("seer server: UDP and TCP answers, authoritative, with the question echoed", async () => {
  await withServer(async (port) => {
    for (const ask of [udpQuery, tcpQuery]) {
      const a = await ask(HOST, port, "api.shop.g.cloud.test");
      assertEquals([a.rcode, a.aa, a.addresses], ["NOERROR", true, ["127.0.0.11", "127.0.0.12"]]);
      assertEquals(a.packet.questions?.[0].name, "api.shop.g.cloud.test");
      const nx = await ask(HOST, port, "nope.g.cloud.test");
      assertEquals([nx.rcode, nx.packet.authorities?.[0].type], ["NXDOMAIN", "SOA"]);
      const refused = await ask(HOST, port, "example.com");
      assertEquals([refused.rcode, refused.aa], ["REFUSED", false]);
    }
  });
});

Deno.test("seer server: dig agrees (UDP and TCP)", async (t) => {
  if (!(await hasDig())) {
    console.log("skipped: dig is not installed (apt-get install dnsutils)");
    return;
  }
  await withServer(async (port) => {
    await t.step("A, NXDOMAIN with SOA, REFUSED", async () => {
      for (const tcp of [false, true]) {
        const a = await dig(HOST, port, "api.shop.g.cloud.test", "A", { tcp });
        assertEquals([a.rcode, a.aa, a.addresses], ["NOERROR", true, ["127.0.0.11", "127.0.0.12"]], a.text);
        const nx = await dig(HOST, port, "nope.g.cloud.test", "A", { tcp });
        assertEquals(nx.rcode, "NXDOMAIN", nx.text);
        assert(
          nx.authority.some((l) => /^g\.cloud\.test\.\s+60\s+IN\s+SOA\s+seer\.tau\.cloud\.test\./.test(l)),
          nx.text,
        );
        assertEquals((await dig(HOST, port, "example.com", "A", { tcp })).rcode, "REFUSED");
      }
    });
  });
});

Deno.test("seer server: malformed packets are dropped or FORMERR, and the server keeps answering", async () => {
  await withServer(async (port) => {
    const good = queryBytes("api.shop.g.cloud.test", "A", { id: 0x1234 });
    // Shorter than a header: nothing to answer (not even an id).
    assertEquals(await udpRaw(HOST, port, new Uint8Array([1, 2, 3]), 300), null);
    // A response (QR set) is never answered: no loops between servers.
    const response = good.slice();
    response[2] |= 0x80;
    assertEquals(await udpRaw(HOST, port, response, 300), null);
    // Header says one question, the bytes end inside it.
    const cut = await udpRaw(HOST, port, good.subarray(0, 20));
    assertEquals(describe(dns.decode(cut!)).rcode, "FORMERR");
    assertEquals(dns.decode(cut!).id, 0x1234);
    // A name compression pointer that points at itself (a decoder loop, if unguarded).
    const loop = new Uint8Array([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    assertEquals(describe(dns.decode((await udpRaw(HOST, port, loop))!)).rcode, "FORMERR");
    // Two questions, or an answer section in a query.
    const two = good.slice();
    two[5] = 2;
    assertEquals(describe(dns.decode((await udpRaw(HOST, port, two))!)).rcode, "FORMERR");
    const withAnswer = good.slice();
    withAnswer[7] = 1;
    assertEquals(describe(dns.decode((await udpRaw(HOST, port, withAnswer))!)).rcode, "FORMERR");
    // Random bytes: never a crash (each either dropped or FORMERR).
    for (let i = 0; i < 200; i++) {
      const junk = crypto.getRandomValues(new Uint8Array(12 + (i % 60)));
      junk[2] &= 0x7f; // a query, so that it reaches the decoder
      const out = await udpRaw(HOST, port, junk, 200);
      if (out) {
        assert(["FORMERR", "NOTIMP", "NOERROR", "NXDOMAIN", "REFUSED"].includes(describe(dns.decode(out)).rcode));
      }
    }
    // A NOTIFY (opcode 4) is not implemented.
    const notify = good.slice();
    notify[2] = (notify[2] & 0x87) | (4 << 3);
    assertEquals(describe(dns.decode((await udpRaw(HOST, port, notify))!)).rcode, "NOTIMP");
    // An oversized datagram is dropped.
    assertEquals(await udpRaw(HOST, port, new Uint8Array(5000), 300), null);
    // EDNS version 1: BADVERS (extended rcode 16), with our OPT.
    const v1 = dns.decode(queryBytes("api.shop.g.cloud.test", "A", { edns: true }));
    (v1.additionals![0] as unknown as { ednsVersion: number }).ednsVersion = 1;
    const badvers = dns.decode((await udpRaw(HOST, port, dns.encode(v1)))!);
    assertEquals((badvers.additionals?.[0] as unknown as { extendedRcode: number }).extendedRcode, 1);
    assertEquals(badvers.answers?.length, 0);
    // Zone transfers are refused.
    assertEquals((await tcpQuery(HOST, port, "cloud.test", "AXFR")).rcode, "REFUSED");
    // Still answering.
    assertEquals((await udpQuery(HOST, port, "api.shop.g.cloud.test")).addresses.length, 2);
  });
});

Deno.test("seer server: TCP pipelining answers in order; junk and idle connections are closed", async () => {
  await withServer(async (port) => {
    // 20 queries in one write.
    const queries = Array.from({ length: 20 }, (_, i) => frame(queryBytes("api.shop.g.cloud.test", "A", { id: i })));
    const all = new Uint8Array(queries.reduce((n, q) => n + q.length, 0));
    let at = 0;
    for (const q of queries) {
      all.set(q, at);
      at += q.length;
    }
    const replies = await tcpRaw(HOST, port, all, 20);
    assertEquals(replies.map((r) => dns.decode(r).id), queries.map((_, i) => i));
    // One query split across two writes (inside its length prefix), then a second on the same connection.
    const split = await Deno.connect({ hostname: HOST, port });
    const one = frame(queryBytes("api.shop.g.cloud.test", "A", { id: 77 }));
    await split.write(one.subarray(0, 1));
    await new Promise((r) => setTimeout(r, 50));
    await split.write(one.subarray(1));
    await split.write(frame(queryBytes("nope.g.cloud.test", "A", { id: 78 })));
    const got: number[] = [];
    const buf = new Uint8Array(4096);
    let have = 0;
    while (got.length < 2) {
      const n = await split.read(buf.subarray(have));
      if (n === null) break;
      have += n;
      while (have >= 2 && have >= 2 + ((buf[0] << 8) | buf[1])) {
        const len = (buf[0] << 8) | buf[1];
        got.push(dns.decode(buf.slice(2, 2 + len)).id!);
        buf.copyWithin(0, 2 + len, have);
        have -= 2 + len;
      }
    }
    split.close();
    assertEquals(got, [77, 78]);
    // A length prefix that cannot be a DNS message: the connection is closed, no answer.
    assertEquals(await tcpRaw(HOST, port, new Uint8Array([0, 3, 1, 2, 3]), 1), []);
    assertEquals(await tcpRaw(HOST, port, new Uint8Array([0xff, 0xff]), 1), []);
    // A silent connection is closed after the idle timeout (300 ms here): the read ends without any answer.
    const conn = await Deno.connect({ hostname: HOST, port });
    const started = Date.now();
    const n = await conn.read(new Uint8Array(16)).catch(() => null);
    assertEquals(n, null);
    assert(Date.now() - started < 5_000, "closed by the idle timer, not by this test's patience");
    conn.close();
    // A connection that trickles a query byte by byte slower than the timeout is closed too.
    const slow = await Deno.connect({ hostname: HOST, port });
    const q = frame(queryBytes("api.shop.g.cloud.test"));
    let closed = false;
    for (let i = 0; i < q.length && !closed; i++) {
      try {
        await slow.write(q.subarray(i, i + 1));
      } catch {
        closed = true;
      }
      await new Promise((r) => setTimeout(r, 40));
    }
    const rest = await slow.read(new Uint8Array(512)).catch(() => null);
    assertEquals(rest, null, "no answer to a query that took longer than the idle timeout");
    slow.close();
  }, 300);
});

Deno.test("seer server: an answer too big for UDP is truncated; TCP carries it whole", async () => {
  // 25 A records of this name are ~960 bytes (the library does not compress names): over 512, under EDNS's 1232.
  gateways = Array.from({ length: 25 }, (_, i) => `127.0.1.${i + 1}`);
  try {
    await withServer(async (port) => {
      const udp = await udpQuery(HOST, port, "api.shop.g.cloud.test");
      assertEquals([udp.tc, udp.addresses.length], [true, 0]);
      const withEdns = describe(dns.decode(
        (await udpRaw(HOST, port, queryBytes("api.shop.g.cloud.test", "A", { edns: true })))!,
      ));
      assertEquals([withEdns.tc, withEdns.addresses.length], [false, 25]);
      const tcp = await tcpQuery(HOST, port, "api.shop.g.cloud.test");
      assertEquals([tcp.tc, tcp.addresses.length], [false, 25]);
      gateways = Array.from({ length: 200 }, (_, i) => `127.0.1.${i + 1}`);
      const big = describe(dns.decode(
        (await udpRaw(HOST, port, queryBytes("api.shop.g.cloud.test", "A", { edns: true })))!,
      ));
      assertEquals([big.tc, big.addresses.length], [true, 0]);
      assertEquals((await tcpQuery(HOST, port, "api.shop.g.cloud.test")).addresses.length, 200);
    });
  } finally {
    gateways = ["127.0.0.11", "127.0.0.12"];
  }
});

Deno.test("seer server: TCP connections beyond the limit are closed at once; those within it are served", async () => {
  const server = await startDnsServer({
    hostname: HOST,
    port: 0,
    answer: (q) => answer(view, q),
    maxTcpConnections: 2,
  });
  const held: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 2; i++) held.push(await Deno.connect({ hostname: HOST, port: server.port }));
    await new Promise((r) => setTimeout(r, 100)); // let the server accept both
    assertEquals(await tcpRaw(HOST, server.port, frame(queryBytes("api.shop.g.cloud.test")), 1), []);
    assertEquals(server.stats.tcpRejected, 1);
    held.pop()!.close();
    await new Promise((r) => setTimeout(r, 100));
    assertEquals((await tcpQuery(HOST, server.port, "api.shop.g.cloud.test")).addresses.length, 2);
  } finally {
    for (const c of held) c.close();
    await server.close();
  }
});

Deno.test("seer server: a port in use is one clear error", async () => {
  await withServer(async (port) => {
    const err = await startDnsServer({ hostname: HOST, port, answer: (q) => answer(view, q) }).then(
      (s) => s.close().then(() => null),
      (e) => e as Error,
    );
    assert(err, "a second server on the same port must fail");
    assert(
      /seer cannot listen for DNS \(TCP\) on 127\.0\.0\.1:\d+: the address is in use/.test(err.message),
      err.message,
    );
  });
});
