/**
 * The per-hop tunnel that pins a request to the addresses the policy checked (see outbound.ts, "DNS rebinding"): an
 * in-process SOCKS5 server (RFC 1928, user/password auth per RFC 1929) on 127.0.0.1, serving one hop's
 * Deno.HttpClient only. fetch asks it for the URL's host by name (`socks5h`); it dials the checked addresses instead,
 * so TLS, SNI and the certificate check stay end to end between fetch and the origin.
 */

import { formatIp, type Ip, normalHost } from "./addresses.ts";

/** Error text on one line: a HostError message is a single line. */
export function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

/** Buffered reads of exact lengths off a connection; `rest` is what was read past the last one. */
class ConnReader {
  #buf = new Uint8Array(0);
  constructor(private conn: Deno.Conn) {}
  async take(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(4096);
      const got = await this.conn.read(chunk);
      if (got === null) throw new Error("the client closed the tunnel");
      const next = new Uint8Array(this.#buf.length + got);
      next.set(this.#buf);
      next.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = next;
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }
  rest(): Uint8Array {
    return this.#buf;
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Copies `from` to `to` until EOF (then half-closes `to`); on an error (a side closed), closes both. */
async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      await writeAll(to, buf.subarray(0, n));
    }
    await to.closeWrite();
  } catch {
    tryClose(from);
    tryClose(to);
  }
}

function tryClose(conn: { close(): void }): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

const SOCKS_OK = 0, SOCKS_NOT_ALLOWED = 2, SOCKS_REFUSED = 5, SOCKS_BAD_COMMAND = 7;

function socksReply(code: number): Uint8Array {
  return new Uint8Array([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

/**
 * A SOCKS5 server on 127.0.0.1 for one hop: it serves the hop's HttpClient (user/password auth with a random
 * password) and connects only to `addresses` (in order, the first that answers) on `port`.
 */
export class Tunnel {
  readonly client: Deno.HttpClient;
  /** Why the last connection attempt to the origin failed ("127.0.0.1:8080: Connection refused"). */
  connectError: string | undefined;
  #listener: Deno.Listener;
  #password = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  #abort = new AbortController();
  #conns = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;

  constructor(
    private addresses: readonly string[],
    private port: number,
    /** What fetch asks the tunnel for: the URL's host name, or its IP literal's address. */
    private expect: { name: string } | { ip: Ip },
    caCerts: string[] | undefined,
  ) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
    const { port: local } = this.#listener.addr as Deno.NetAddr;
    this.client = Deno.createHttpClient({
      proxy: { url: `socks5h://127.0.0.1:${local}`, basicAuth: { username: "tau", password: this.#password } },
      caCerts,
    });
    this.#accepting = this.#accept();
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        this.#conns.add(conn);
        const task: Promise<void> = this.#serve(conn).catch(() => {}).finally(() => {
          tryClose(conn);
          this.#conns.delete(conn);
          this.#tasks.delete(task);
        });
        this.#tasks.add(task);
      }
    } catch {
      // The listener was closed.
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const r = new ConnReader(conn);
    // RFC 1928 greeting: only user/password (RFC 1929) is offered back.
    const [ver, count] = await r.take(2);
    const methods = await r.take(count);
    if (ver !== 5 || !methods.includes(2)) {
      await writeAll(conn, new Uint8Array([5, 0xff]));
      return;
    }
    await writeAll(conn, new Uint8Array([5, 2]));
    const [authVer, userLen] = await r.take(2);
    const user = new TextDecoder().decode(await r.take(userLen));
    const [passLen] = await r.take(1);
    const password = new TextDecoder().decode(await r.take(passLen));
    if (authVer !== 1 || user !== "tau" || password !== this.#password) {
      await writeAll(conn, new Uint8Array([1, 1]));
      return;
    }
    await writeAll(conn, new Uint8Array([1, 0]));
    // The request: CONNECT to an IPv4 (1), a name (3) or an IPv6 (4), then the port.
    const [, cmd, , atyp] = await r.take(4);
    let asked: string;
    if (atyp === 1) asked = formatIp({ family: 4, bytes: await r.take(4) });
    else if (atyp === 4) asked = formatIp({ family: 6, bytes: await r.take(16) });
    else if (atyp === 3) asked = new TextDecoder().decode(await r.take((await r.take(1))[0])).toLowerCase();
    else {
      await writeAll(conn, socksReply(SOCKS_BAD_COMMAND));
      return;
    }
    const portBytes = await r.take(2);
    if (cmd !== 1) {
      await writeAll(conn, socksReply(SOCKS_BAD_COMMAND));
      return;
    }
    const want = "name" in this.expect ? this.expect.name : formatIp(this.expect.ip);
    const askedPort = (portBytes[0] << 8) | portBytes[1];
    if (normalHost(asked) !== normalHost(want) || askedPort !== this.port) {
      this.connectError = `the tunnel was asked for ${asked}:${askedPort}, not ${want}:${this.port}`;
      await writeAll(conn, socksReply(SOCKS_NOT_ALLOWED));
      return;
    }
    // The name is not looked at again: only the checked addresses are dialled.
    let upstream: Deno.Conn | undefined;
    for (const address of this.addresses) {
      try {
        upstream = await Deno.connect({ hostname: address, port: this.port, signal: this.#abort.signal });
        this.connectError = undefined;
        break;
      } catch (err) {
        const shown = address.includes(":") ? `[${address}]` : address;
        this.connectError = `could not connect to ${shown}:${this.port}: ${oneLine((err as Error).message)}`;
      }
    }
    if (!upstream) {
      await writeAll(conn, socksReply(SOCKS_REFUSED));
      return;
    }
    if (this.#abort.signal.aborted) {
      tryClose(upstream);
      return;
    }
    this.#conns.add(upstream);
    try {
      await writeAll(conn, socksReply(SOCKS_OK));
      const early = r.rest();
      if (early.length) await writeAll(upstream, early);
      await Promise.all([pump(conn, upstream), pump(upstream, conn)]);
    } finally {
      tryClose(upstream);
      this.#conns.delete(upstream);
    }
  }

  /** Closes the client, the listener and every connection, and waits until nothing of the tunnel runs. */
  async close(): Promise<void> {
    this.#abort.abort();
    this.client.close();
    tryClose(this.#listener);
    for (const conn of this.#conns) tryClose(conn);
    await this.#accepting;
    await Promise.all([...this.#tasks]);
  }
}
