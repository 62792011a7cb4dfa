/**
 * A DNS client for tests, on the same library seer answers with (@dnsquery/dns-packet), over UDP (node:dgram) or TCP
 * (length-prefixed), and `dig` when it is installed (Debian's dnsutils) as a client seer's code did not write.
 * Every call is bounded by a timeout.
 */
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import * as dns from "@dnsquery/dns-packet";
import type { Packet, RecordType } from "@dnsquery/dns-packet";

export interface Asked {
  rcode: string;
  aa: boolean;
  tc: boolean;
  /** Address answers (A and AAAA data), sorted. */
  addresses: string[];
  packet: Packet;
}

const TIMEOUT_MS = 2_000;

export function describe(packet: Packet): Asked {
  const addresses = (packet.answers ?? []).filter((a) => a.type === "A" || a.type === "AAAA").map((a) =>
    a.data as string
  ).sort();
  return {
    rcode: packet.rcode ?? "NOERROR",
    aa: !!packet.flag_aa,
    tc: !!packet.flag_tc,
    addresses,
    packet,
  };
}

export function queryBytes(name: string, type: RecordType = "A", opts: { id?: number; edns?: boolean } = {}) {
  return dns.encode({
    type: "query",
    id: opts.id ?? Math.floor(Math.random() * 65536),
    flags: dns.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
    additionals: opts.edns ? [{ name: ".", type: "OPT", data: [], udpPayloadSize: 1232 } as dns.Answer] : [],
  });
}

/** Send raw bytes over UDP; the reply's bytes, or null when none came within the timeout. */
export function udpRaw(
  host: string,
  port: number,
  bytes: Uint8Array,
  timeoutMs = TIMEOUT_MS,
): Promise<Uint8Array | null> {
  const sock = dgram.createSocket("udp4");
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(null), timeoutMs);
    const done = (v: Uint8Array | null) => {
      clearTimeout(timer);
      sock.close();
      resolve(v);
    };
    sock.on("message", (msg: Uint8Array) => done(new Uint8Array(msg)));
    sock.on("error", () => done(null));
    sock.send(Buffer.from(bytes), port, host);
  });
}

export async function udpQuery(host: string, port: number, name: string, type: RecordType = "A"): Promise<Asked> {
  const reply = await udpRaw(host, port, queryBytes(name, type));
  if (!reply) throw new Error(`no UDP answer from ${host}:${port} for ${name} ${type}`);
  return describe(dns.decode(reply));
}

/** Write `bytes` on a new TCP connection and read `count` length-prefixed messages back. */
export async function tcpRaw(host: string, port: number, bytes: Uint8Array, count: number): Promise<Uint8Array[]> {
  const conn = await Deno.connect({ hostname: host, port });
  const timer = setTimeout(() => conn.close(), TIMEOUT_MS);
  const out: Uint8Array[] = [];
  try {
    await conn.write(bytes);
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(65536);
    while (out.length < count) {
      const n = await conn.read(chunk);
      if (n === null) break;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
      while (buf.length >= 2 && buf.length >= 2 + ((buf[0] << 8) | buf[1])) {
        const len = (buf[0] << 8) | buf[1];
        out.push(buf.slice(2, 2 + len));
        buf = buf.slice(2 + len);
      }
    }
  } catch {
    /* closed by the server or by the timeout: return what came */
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
  return out;
}

export function frame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + message.length);
  out[0] = message.length >> 8;
  out[1] = message.length & 0xff;
  out.set(message, 2);
  return out;
}

export async function tcpQuery(host: string, port: number, name: string, type: RecordType = "A"): Promise<Asked> {
  const [reply] = await tcpRaw(host, port, frame(queryBytes(name, type)), 1);
  if (!reply) throw new Error(`no TCP answer from ${host}:${port} for ${name} ${type}`);
  return describe(dns.decode(reply));
}

let digInstalled: Promise<boolean> | undefined;
export function hasDig(): Promise<boolean> {
  digInstalled ??= new Deno.Command("sh", { args: ["-c", "command -v dig"], stdout: "null", stderr: "null" })
    .output().then((o) => o.success, () => false);
  return digInstalled;
}

/** `dig` against one server: rcode, flags and address answers parsed from its output. */
export async function dig(
  host: string,
  port: number,
  name: string,
  type = "A",
  opts: { tcp?: boolean } = {},
): Promise<{ rcode: string; aa: boolean; addresses: string[]; authority: string[]; text: string }> {
  const args = [`@${host}`, "-p", String(port), name, type, "+norecurse", "+time=2", "+tries=1"];
  if (opts.tcp) args.push("+tcp");
  const out = await new Deno.Command("dig", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rcode = text.match(/status: ([A-Z]+)/)?.[1] ?? "";
  const flags = text.match(/;; flags: ([a-z ]+);/)?.[1].split(" ") ?? [];
  const section = (title: string) => {
    const m = text.match(new RegExp(`;; ${title} SECTION:\\n([\\s\\S]*?)\\n\\n`));
    return m ? m[1].split("\n").filter((l) => l && !l.startsWith(";")) : [];
  };
  const addresses = section("ANSWER").map((l) => l.split(/\s+/)).filter((f) => f[3] === "A" || f[3] === "AAAA")
    .map((f) => f[4]).sort();
  return { rcode, aa: flags.includes("aa"), addresses, authority: section("AUTHORITY"), text };
}
