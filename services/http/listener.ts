/**
 * The node's HTTP listener: our own accept loop in front of Deno's HTTP server. Deno.serve (2.9.6) has no header
 * timeout and no connection cap, and its accept loop ends on the first accept error, so one `Too many open files`
 * took the whole node down (issue 8, #4). Here every accepted connection is handed to Deno's own per-connection
 * server (the same Rust HTTP/1.1 and HTTP/2 code Deno.serve runs on each connection), reached through
 * `Deno[Deno.internal].serveHttpOnConnection`; that is what lets us count, time and close connections ourselves.
 *
 * Why this design (hello world, wrk -c64, server CPU per request, medians of interleaved runs, issue 8 report):
 * raw Deno.serve 12.2 us; this listener 12.8 us; the same with a timer or a `completed` promise per request
 * 14.3-19.6 us; node:http with headersTimeout 42 us; a byte pump in front of Deno.serve on a Unix socket ~5x fewer
 * requests/s. So nothing here runs per request but one counter increment.
 *
 * - Header timeout: a connection that has started no request for `headerTimeoutMs` (since it opened, or since its
 *   previous request began) is shut down gracefully by one sweep timer: a half-sent head is dropped (FIN), an idle
 *   keep-alive connection closes, a response still streaming is finished first and the connection closed after it.
 * - Connection cap: at `maxConnections`, the oldest connection that never sent a whole request head makes room;
 *   when there is none, the new one gets a 503 and is closed.
 * - Accept errors (EMFILE, ENFILE, ENOBUFS) are logged and retried with back-off: the listener never stops on them.
 *
 * Upgraded connections (WebSockets) start no further requests, so the sweep would close them after the timeout:
 * nothing tau serves upgrades today (the container proxy drops Upgrade); exempt them when something does.
 */

export type Handler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  conn: ConnectionControl,
) => Response | Promise<Response>;

/** What a handler may do to the connection its request came on. */
export interface ConnectionControl {
  /**
   * Closes the connection `LINGER_MS` from now, whatever it is doing. For a request whose body was refused: Deno
   * reads an unread body to its end to keep the connection usable (a 1 GB POST answered 413 was read whole), so
   * the client gets the time to read our answer and no more.
   */
  closeSoon(): void;
}

/** Long enough for a client to read a short answer; nginx's lingering_timeout is 5 s, its lingering_time 30 s. */
export const LINGER_MS = 2000;

export interface ListenerOptions {
  hostname: string;
  port: number;
  /** How long a connection may take to start a request: after it opens, and after each request it sent. */
  headerTimeoutMs: number;
  /** Open connections at most; beyond, never-used ones are closed first, then new ones refused with 503. */
  maxConnections: number;
  log: (line: string) => void;
}

export interface NodeListener {
  addr: Deno.NetAddr;
  /** Connections open right now. */
  connections(): number;
  /** Stops accepting, lets in-flight requests finish, closes every connection. */
  shutdown(): Promise<void>;
}

interface Connection {
  /** requests started on this connection; the sweep compares it with `seen` */
  requests: number;
  seen: number;
  /** when `requests` last changed (or the connection opened), to the sweep's resolution */
  since: number;
  server?: { finished: Promise<void>; shutdown(): Promise<void> };
  closing: boolean;
}

type ServeOnConnection = (
  conn: Deno.Conn,
  signal: AbortSignal | undefined,
  handler: Handler,
  onError: (err: unknown) => Response,
  onListen: () => void,
) => { finished: Promise<void>; shutdown(): Promise<void> };

/** Deno's per-connection server, when this Deno has it (checked by tests/edge_test.ts on the pinned version). */
function denoServeOnConnection(): ServeOnConnection | undefined {
  const internalKey = (Deno as unknown as { internal?: symbol }).internal;
  const internals = internalKey ? (Deno as unknown as Record<symbol, Record<string, unknown>>)[internalKey] : undefined;
  const fn = internals?.serveHttpOnConnection;
  return typeof fn === "function" ? fn as ServeOnConnection : undefined;
}

const BUSY_BODY = "node busy: too many open connections, retry shortly\n";
const BUSY = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n" +
    `retry-after: 1\r\ncontent-length: ${BUSY_BODY.length}\r\n\r\n${BUSY_BODY}`,
);

export function listen(opts: ListenerOptions, handler: Handler): NodeListener {
  const serveOn = denoServeOnConnection();
  if (!serveOn) {
    opts.log(
      "warning: this Deno has no per-connection HTTP server; serving with Deno.serve, without a header timeout or " +
        "connection cap (use the Deno version tau pins)",
    );
    const control: ConnectionControl = { closeSoon() {} };
    const server = Deno.serve(
      { hostname: opts.hostname, port: opts.port, onListen: () => {} },
      (req, info) => handler(req, info, control),
    );
    return { addr: server.addr, connections: () => 0, shutdown: () => server.shutdown() };
  }

  const listener = Deno.listen({ hostname: opts.hostname, port: opts.port });
  const conns = new Set<Connection>();
  let closed = false;
  const onError = (err: unknown) => {
    opts.log(`http: request handler failed: ${err instanceof Error ? err.message : String(err)}`);
    return new Response("internal error\n", { status: 500, headers: { "content-type": "text/plain; charset=utf-8" } });
  };

  const close = (c: Connection) => {
    c.closing = true;
    c.server?.shutdown().catch(() => {});
  };

  // One timer for every connection; its period bounds how late past the timeout a connection is closed.
  const tick = Math.max(20, Math.min(1000, Math.floor(opts.headerTimeoutMs / 4)));
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const c of conns) {
      if (c.requests !== c.seen) {
        c.seen = c.requests;
        c.since = now;
      } else if (!c.closing && now - c.since >= opts.headerTimeoutMs) {
        close(c);
      }
    }
  }, tick);
  Deno.unrefTimer(sweep);

  /**
   * At the cap, the oldest connection that has not sent one whole request head in a sweep period makes room (a
   * slow-loris client's): it closes at once, as nothing can be in flight on it. Connections that have sent requests
   * may be streaming a response, so they are left to the timeout.
   */
  const evictUnused = (): boolean => {
    const now = Date.now();
    for (const c of conns) {
      if (c.requests === 0 && !c.closing && now - c.since >= tick) {
        close(c);
        return true;
      }
    }
    return false;
  };

  const serve = (conn: Deno.Conn) => {
    const c: Connection = { requests: 0, seen: 0, since: Date.now(), closing: false };
    // Its abort signal is the one way to close a connection Deno's server owns without waiting for it (closeSoon).
    // Deno registers one listener on it, which throws once the connection is gone (BadResource) and would then
    // be an uncaught error; so the "signal" only keeps that listener, for us to call inside a try.
    let cancel: (() => void) | undefined;
    const signal = { addEventListener: (_: string, fn: () => void) => cancel = fn } as unknown as AbortSignal;
    const control: ConnectionControl = {
      closeSoon: () =>
        Deno.unrefTimer(setTimeout(() => {
          try {
            cancel?.();
          } catch { /* closed already */ }
        }, LINGER_MS)),
    };
    conns.add(c);
    try {
      c.server = serveOn(
        conn,
        signal,
        (req, info) => {
          c.requests++;
          return handler(req, info, control);
        },
        onError,
        () => {},
      );
    } catch (err) {
      conns.delete(c);
      opts.log(`http: could not serve a connection: ${err instanceof Error ? err.message : String(err)}`);
      try {
        conn.close();
      } catch { /* already closed */ }
      return;
    }
    // A connection reset by its client rejects `finished`; that is the client's business, not an error of ours.
    c.server.finished.catch(() => {}).finally(() => conns.delete(c));
  };

  const refuse = (conn: Deno.Conn) => {
    conn.write(BUSY).catch(() => {}).finally(() => {
      try {
        conn.close();
      } catch { /* already closed */ }
    });
  };

  const accepting = (async () => {
    let failures = 0;
    let lastLogged = 0;
    let unlogged = 0;
    while (!closed) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        failures = 0;
      } catch (err) {
        if (closed) return;
        // EMFILE and friends: the connection waits in the backlog; retry once fds are freed (the sweep frees them).
        const now = Date.now();
        unlogged++;
        if (now - lastLogged >= 10_000) {
          opts.log(
            `http: accept failed ${unlogged}x: ${(err as Error).message} (${conns.size} connections open)` +
              `; hint: raise the open-file limit (ulimit -n) or lower --max-connections`,
          );
          lastLogged = now;
          unlogged = 0;
        }
        await new Promise((r) => setTimeout(r, Math.min(1000, 10 * 2 ** Math.min(failures++, 7))));
        continue;
      }
      if (conns.size >= opts.maxConnections && !evictUnused()) refuse(conn);
      else serve(conn);
    }
  })();

  return {
    addr: listener.addr as Deno.NetAddr,
    connections: () => conns.size,
    async shutdown() {
      closed = true;
      clearInterval(sweep);
      try {
        listener.close();
      } catch { /* already closed */ }
      await accepting;
      await Promise.all([...conns].map((c) => c.server?.shutdown().catch(() => {})));
    },
  };
}
