/**
 * Seer's DNS listeners: UDP (node:dgram: Deno.listenDatagram needs --unstable-net) and TCP (Deno.listen) on one
 * address and port, speaking the wire format through @dnsquery/dns-packet. What to answer is zone.ts's business; this
 * file keeps the protocol honest and every resource bounded:
 * - a packet that is not a query is dropped (never answer a response: no reflection loops between servers); a query
 *   the library cannot decode, or with other than one question, is FORMERR; an opcode other than QUERY is NOTIMP;
 * - EDNS(0): an OPT in the query gets one back (payload 1232, the DNS flag day size), version > 0 gets BADVERS;
 * - an answer too big for the asker's UDP size goes out truncated (TC) so the resolver retries over TCP;
 * - TCP: two-byte length prefix, pipelined queries answered in order, at most MAX_TCP_CONNECTIONS at once, each with a
 *   fixed buffer of 2 * (2 + MAX_QUERY_BYTES); a connection that does not complete a query within tcpIdleMs of the
 *   last answer (or of connecting) is closed, so a slow or silent client holds nothing for long.
 */
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import * as dns from "@dnsquery/dns-packet";
import type { Answer, Packet, Question } from "@dnsquery/dns-packet";
import { TauError } from "../../runtime/errors.ts";
import { concatBytes } from "../../runtime/bytes.ts";
import type { Reply } from "./zone.ts";

/** Longest query accepted. Real queries are under 600 bytes even padded (RFC 8467); anything longer is not one. */
export const MAX_QUERY_BYTES = 4096;
/** Without EDNS a UDP answer must fit in 512 bytes (RFC 1035). */
const CLASSIC_UDP_BYTES = 512;
/** The EDNS payload size we offer and honour at most: 1232 avoids IP fragmentation (DNS flag day 2020). */
export const EDNS_UDP_BYTES = 1232;
export const MAX_TCP_CONNECTIONS = 256;
/** RFC 7766 asks for idle timeouts of seconds, not minutes; 10 s keeps a resolver's connection reusable. */
export const TCP_IDLE_MS = 10_000;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const BADVERS_HIGH_BITS = 1; // extended rcode 16 = 1 << 4 in the OPT's upper 8 bits, 0 in the header
const QR = 0x8000;
const AA = 1 << 10;
const TC = 1 << 9;
const RD = 1 << 8;

export interface DnsServerOptions {
  hostname: string;
  /** 0 picks a free port (the same one for UDP and TCP). */
  port: number;
  answer: (q: Question) => Reply;
  tcpIdleMs?: number;
  maxTcpConnections?: number;
  log?: (line: string) => void;
}

export interface DnsServer {
  hostname: string;
  port: number;
  /** Counters since start: what was answered, and what was dropped or refused for being malformed. */
  stats: { udp: number; tcp: number; formerr: number; dropped: number; tcpRejected: number };
  close(): Promise<void>;
}

export type Transport = "udp" | "tcp";

/**
 * The answer to one DNS message, or null to drop it. Exported for the unit tests: the listeners below only move
 * bytes.
 */
export function respond(
  bytes: Uint8Array,
  transport: Transport,
  answer: (q: Question) => Reply,
  stats?: DnsServer["stats"],
): Uint8Array | null {
  if (bytes.length < 12 || bytes.length > MAX_QUERY_BYTES) return drop(stats);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id = view.getUint16(0);
  const flags = view.getUint16(2);
  if (flags & QR) return drop(stats);
  const opcode = (flags >> 11) & 0xf;
  const rd = flags & RD;
  const header = (rcode: number) => ({ type: "response" as const, id, flags: (opcode << 11) | rd | rcode });
  if (opcode !== 0) return dns.encode(header(RCODE.NOTIMP));
  const counts = [view.getUint16(4), view.getUint16(6), view.getUint16(8), view.getUint16(10)];
  // One question, nothing in answer/authority, at most a few additionals (OPT, perhaps a cookie-less TSIG we ignore).
  if (counts[0] !== 1 || counts[1] !== 0 || counts[2] !== 0 || counts[3] > 4) return formerr(header, stats);
  let query: Packet;
  try {
    query = dns.decode(bytes);
  } catch {
    return formerr(header, stats);
  }
  const question = query.questions![0];
  const opts = (query.additionals ?? []).filter((a) => a.type === "OPT") as (Answer & OptFields)[];
  if (opts.length > 1) return formerr(header, stats);
  const edns = opts[0];
  // The library's types know OPT's options as `data`; its encoder reads the EDNS fields beside them.
  const optOut = (highBits = 0): Answer =>
    ({ name: ".", type: "OPT", data: [], udpPayloadSize: EDNS_UDP_BYTES, extendedRcode: highBits }) as Answer;
  if (edns && (edns.ednsVersion ?? 0) > 0) {
    return dns.encode({ ...header(RCODE.NOERROR), questions: [question], additionals: [optOut(BADVERS_HIGH_BITS)] });
  }
  let reply: Reply;
  if (question.class !== "IN" && question.class !== "ANY") {
    // Chaos and Hesiod queries (version.bind...) get no answers; an unknown class cannot even be echoed back.
    if (question.class?.startsWith("UNKNOWN_")) return dns.encode(header(RCODE.REFUSED));
    reply = { rcode: "REFUSED", authoritative: false, answers: [], authorities: [], additionals: [] };
  } else if (question.type === "AXFR" || question.type === "IXFR") {
    reply = { rcode: "REFUSED", authoritative: false, answers: [], authorities: [], additionals: [] };
  } else {
    reply = answer(question);
  }
  const flagsOut = (opcode << 11) | (reply.authoritative ? AA : 0) | rd | RCODE[reply.rcode];
  const additionals = edns ? [...reply.additionals, optOut()] : reply.additionals;
  const packet: Packet = {
    type: "response",
    id,
    flags: flagsOut,
    questions: [question],
    answers: reply.answers,
    authorities: reply.authorities,
    additionals,
  };
  const out = dns.encode(packet);
  const limit = transport === "tcp"
    ? 65535
    : edns
    ? Math.min(Math.max(edns.udpPayloadSize ?? CLASSIC_UDP_BYTES, CLASSIC_UDP_BYTES), EDNS_UDP_BYTES)
    : CLASSIC_UDP_BYTES;
  if (out.length <= limit) return out;
  // Too big for this transport: the header and question only, flagged truncated (the asker retries over TCP).
  return dns.encode({
    ...packet,
    flags: flagsOut | TC,
    answers: [],
    authorities: [],
    additionals: edns ? [optOut()] : [],
  });
}

interface OptFields {
  udpPayloadSize?: number;
  ednsVersion?: number;
}

function drop(stats?: DnsServer["stats"]): null {
  if (stats) stats.dropped++;
  return null;
}

function formerr(header: (rcode: number) => Packet, stats?: DnsServer["stats"]): Uint8Array {
  if (stats) stats.formerr++;
  return dns.encode(header(RCODE.FORMERR));
}

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const log = opts.log ?? (() => {});
  const idleMs = opts.tcpIdleMs ?? TCP_IDLE_MS;
  const maxConns = opts.maxTcpConnections ?? MAX_TCP_CONNECTIONS;
  const stats = { udp: 0, tcp: 0, formerr: 0, dropped: 0, tcpRejected: 0 };
  const where = `${opts.hostname}:${opts.port}`;
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
  } catch (err) {
    throw listenError("TCP", where, err);
  }
  const port = (listener.addr as Deno.NetAddr).port;
  const udp = dgram.createSocket({ type: opts.hostname.includes(":") ? "udp6" : "udp4" });
  try {
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(port, opts.hostname, () => {
        udp.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    listener.close();
    throw listenError("UDP", `${opts.hostname}:${port}`, err);
  }
  udp.on("error", (err) => log(`seer: udp: ${err.message}`));
  udp.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
    let out: Uint8Array | null;
    try {
      out = respond(msg, "udp", opts.answer, stats);
    } catch (err) {
      // A bug in answering must cost one query, not the listener.
      log(`seer: cannot answer a UDP query: ${(err as Error).message}`);
      return;
    }
    if (!out) return;
    stats.udp++;
    udp.send(Buffer.from(out.buffer, out.byteOffset, out.byteLength), rinfo.port, rinfo.address);
  });

  const conns = new Set<Deno.TcpConn>();
  const serveConn = async (conn: Deno.TcpConn) => {
    const buf = new Uint8Array(2 * (2 + MAX_QUERY_BYTES));
    let filled = 0;
    // One timer per connection, re-armed only when it fires: resetting it per answer cost 6-9 us (setTimeout plus
    // clearTimeout, measured), as much as answering the query.
    let lastAnswer = performance.now();
    const expire = () => {
      const idle = performance.now() - lastAnswer;
      if (idle < idleMs) {
        timer = setTimeout(expire, idleMs - idle);
        return;
      }
      try {
        conn.close(); // the pending read fails, and the loop below ends
      } catch { /* already closed */ }
    };
    let timer = setTimeout(expire, idleMs);
    try {
      while (true) {
        const n = await conn.read(buf.subarray(filled));
        if (n === null) break;
        filled += n;
        const replies: Uint8Array[] = [];
        let at = 0;
        let broken = false;
        while (filled - at >= 2) {
          const len = (buf[at] << 8) | buf[at + 1];
          if (len < 12 || len > MAX_QUERY_BYTES) {
            broken = true; // not a DNS message: the stream cannot be resynchronised
            break;
          }
          if (filled - at < 2 + len) break;
          const out = respond(buf.subarray(at + 2, at + 2 + len), "tcp", opts.answer, stats);
          at += 2 + len;
          if (!out) continue;
          const framed = new Uint8Array(2 + out.length);
          framed[0] = out.length >> 8;
          framed[1] = out.length & 0xff;
          framed.set(out, 2);
          replies.push(framed);
        }
        buf.copyWithin(0, at, filled);
        filled -= at;
        if (replies.length) {
          stats.tcp += replies.length;
          const all = concatBytes(replies);
          for (let off = 0; off < all.length;) off += await conn.write(all.subarray(off));
          lastAnswer = performance.now();
        }
        if (broken) break;
      }
    } catch {
      // closed by the idle timer, reset by the peer, or an answering bug: this connection ends, the listener goes on
    } finally {
      clearTimeout(timer);
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };
  const accepting = (async () => {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource) return; // closed
        log(`seer: tcp accept: ${(err as Error).message}`);
        continue;
      }
      if (conns.size >= maxConns) {
        stats.tcpRejected++;
        conn.close();
        continue;
      }
      conns.add(conn);
      serveConn(conn);
    }
  })();

  return {
    hostname: opts.hostname,
    port,
    stats,
    async close() {
      listener.close();
      await accepting;
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closing */ }
      }
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    },
  };
}

function listenError(transport: string, where: string, err: unknown): TauError {
  const e = err as Error & { code?: string };
  const inUse = err instanceof Deno.errors.AddrInUse || e.code === "EADDRINUSE";
  const denied = err instanceof Deno.errors.PermissionDenied || e.code === "EACCES";
  return new TauError(
    `seer cannot listen for DNS (${transport}) on ${where}: ${
      inUse ? "the address is in use" : denied ? "permission denied" : e.message
    }`,
    {
      hint: inUse
        ? "stop what holds that port, or pick another with tau config generate --dns PORT"
        : denied
        ? "ports below 1024 need root (or CAP_NET_BIND_SERVICE); or pick another with tau config generate --dns PORT"
        : "check the node's ip: and ports.dns in its config",
      cause: err,
    },
  );
}
