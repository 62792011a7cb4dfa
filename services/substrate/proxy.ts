/**
 * HTTP proxying from the gateway to a container, over the Unix socket its port is published on.
 * node:http rather than fetch: fetch through a Unix-socket client treats the socket as an HTTP proxy and sends
 * absolute-form request lines (`GET http://host/ HTTP/1.1`), which plain servers (busybox httpd) refuse, and it
 * cannot set Host. node:http sends origin-form with the client's Host, and its keep-alive agent reuses
 * connections, so the helper's per-connection forwarder is paid once per pooled connection, not per request.
 * Nothing here opens a TCP connection.
 */
import http from "node:http";

/** Headers that describe one hop, not the message (RFC 9110 section 7.6.1). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const NULL_BODY = new Set([101, 204, 205, 304]);

export interface Upstream {
  socket: string;
  agent: http.Agent;
  /** counted from the request until its response body ends, so a retiring container is stopped only when idle */
  inflight: number;
}

export function upstreamAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 256 });
}

export interface ForwardOptions {
  host: string;
  requestId: string;
  /** the client's address, for X-Forwarded-For */
  clientIp?: string;
  /** response headers wait at most this long (the container is hung, not slow to stream) */
  timeoutMs?: number;
}

/** Forwards `req` (path and query unchanged) and streams the answer back. Rejects when the container is unreachable. */
export function forward(req: Request, upstream: Upstream, opts: ForwardOptions): Promise<Response> {
  const url = new URL(req.url);
  const headers: Record<string, string> = {};
  req.headers.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name)) headers[name] = value;
  });
  headers.host = opts.host;
  headers["x-forwarded-host"] = opts.host;
  headers["x-forwarded-proto"] = url.protocol.replace(":", "");
  if (opts.clientIp) {
    headers["x-forwarded-for"] = headers["x-forwarded-for"]
      ? `${headers["x-forwarded-for"]}, ${opts.clientIp}`
      : opts.clientIp;
  }
  headers["x-request-id"] = opts.requestId;

  upstream.inflight++;
  let counted = true;
  const done = () => {
    if (counted) upstream.inflight--;
    counted = false;
  };

  return new Promise<Response>((resolve, reject) => {
    const out = http.request({
      socketPath: upstream.socket,
      agent: upstream.agent,
      method: req.method,
      path: url.pathname + url.search,
      headers,
      timeout: opts.timeoutMs ?? 60_000,
      // CGI-style servers (busybox httpd) end header lines with a bare LF, as browsers and curl accept; the
      // lenient parser only affects how this container's own responses are read.
      insecureHTTPParser: true,
    }, (res) => {
      const resHeaders = new Headers();
      const raw = res.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        if (!HOP_BY_HOP.has(raw[i].toLowerCase())) resHeaders.append(raw[i], raw[i + 1]);
      }
      resHeaders.set("x-request-id", opts.requestId);
      const status = res.statusCode ?? 502;
      if (NULL_BODY.has(status) || req.method === "HEAD") {
        res.resume(); // nothing to stream: the exchange is over once the headers are in
        done();
        resolve(new Response(null, { status, statusText: res.statusMessage, headers: resHeaders }));
        return;
      }
      // The client may leave mid-body (cancel); node's stream still ends or errors afterwards, and touching a
      // cancelled controller throws from an event handler, which would take the whole node down.
      let open = true;
      const finish = (fn: () => void) => {
        done();
        if (!open) return;
        open = false;
        fn();
      };
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          res.on("data", (chunk: Uint8Array) => {
            if (!open) return;
            controller.enqueue(new Uint8Array(chunk));
            if ((controller.desiredSize ?? 1) <= 0) res.pause();
          });
          res.on("end", () => finish(() => controller.close()));
          res.on("error", (err) => finish(() => controller.error(err)));
          res.on("close", () => finish(() => controller.error(new Error("the container closed the connection"))));
        },
        pull() {
          res.resume();
        },
        cancel() {
          finish(() => {});
          res.destroy();
        },
      });
      resolve(new Response(body, { status, statusText: res.statusMessage, headers: resHeaders }));
    });
    out.on("timeout", () => out.destroy(new Error("the container sent no response headers in time")));
    out.on("error", (err) => {
      done();
      reject(err);
    });
    // Not req.signal: Deno.serve aborts it after every successful response too, which would kill kept-alive
    // sockets. A client that leaves mid-body cancels the body stream instead (see cancel above).
    if (!req.body) {
      out.end();
      return;
    }
    (async () => {
      for await (const chunk of req.body!) {
        if (!out.write(chunk)) await new Promise((r) => out.once("drain", r));
      }
      out.end();
    })().catch((err) => out.destroy(err));
  });
}

/** Resolves when the container answers any HTTP response on `path` (readiness); rejects when nothing listens yet. */
export function probe(upstream: Upstream, path = "/", timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const out = http.request({
      socketPath: upstream.socket,
      agent: upstream.agent,
      method: "GET",
      path,
      headers: { host: "localhost", "user-agent": "tau-readiness" },
      timeout: timeoutMs,
    }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    out.on("timeout", () => out.destroy(new Error("no answer")));
    out.on("error", reject);
    out.end();
  });
}
