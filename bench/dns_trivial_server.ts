/**
 * The DNS baseline: the least a Deno DNS server can do per query with the library seer uses (decode, one fixed A
 * answer, encode), over node:dgram and a length-prefixed TCP loop. Seer's figures are ratios against this, same run.
 * Usage: deno run -A bench/dns_trivial_server.ts IP PORT (prints "ready" once both listeners are bound).
 */
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import * as dns from "@dnsquery/dns-packet";

const [ip, portText] = Deno.args;
const port = Number(portText);

function reply(bytes: Uint8Array): Uint8Array {
  const q = dns.decode(bytes);
  return dns.encode({
    type: "response",
    id: q.id,
    flags: dns.AUTHORITATIVE_ANSWER,
    questions: q.questions,
    answers: [{ name: q.questions![0].name, type: "A", ttl: 5, data: "127.0.0.1" }],
  });
}

const udp = dgram.createSocket("udp4");
udp.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
  try {
    const out = reply(msg);
    udp.send(Buffer.from(out.buffer, out.byteOffset, out.byteLength), rinfo.port, rinfo.address);
  } catch { /* not a query */ }
});
await new Promise<void>((resolve) => udp.bind(port, ip, resolve));

const listener = Deno.listen({ hostname: ip, port });
(async () => {
  for await (const conn of listener) {
    (async () => {
      const buf = new Uint8Array(16384);
      let filled = 0;
      try {
        while (true) {
          const n = await conn.read(buf.subarray(filled));
          if (n === null) break;
          filled += n;
          const parts: Uint8Array[] = [];
          let at = 0;
          while (filled - at >= 2 && filled - at >= 2 + ((buf[at] << 8) | buf[at + 1])) {
            const len = (buf[at] << 8) | buf[at + 1];
            const out = reply(buf.subarray(at + 2, at + 2 + len));
            const framed = new Uint8Array(2 + out.length);
            framed[0] = out.length >> 8;
            framed[1] = out.length & 0xff;
            framed.set(out, 2);
            parts.push(framed);
            at += 2 + len;
          }
          buf.copyWithin(0, at, filled);
          filled -= at;
          if (!parts.length) continue;
          // One write per read, as seer does.
          const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          let o = 0;
          for (const p of parts) {
            all.set(p, o);
            o += p.length;
          }
          for (let off = 0; off < all.length;) off += await conn.write(all.subarray(off));
        }
      } catch {
        /* closed */
      } finally {
        try {
          conn.close();
        } catch { /* closed */ }
      }
    })();
  }
})();
console.log("ready");
