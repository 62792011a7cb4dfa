/**
 * HTTP proxying from the gateway to a container, over the Unix socket its port is published on (see http1.ts for
 * the client and why it is ours). Connections are kept alive per replica, so the helper's per-connection
 * forwarder is paid once per pooled connection, not per request. Nothing here opens a TCP connection.
 */
import { UnixHttpPool, type UpstreamResponse } from "./http1.ts";

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

/** Statuses whose Response must have a null body. */
const NULL_BODY = new Set([101, 204, 205, 304]);

export interface Upstream {
  pool: UnixHttpPool;
  /** counted from the request until its response body ends, so a retiring container is stopped only when idle */
  inflight: number;
}

export function upstream(socket: string): Upstream {
  return { pool: new UnixHttpPool(socket), inflight: 0 };
}

export interface ForwardOptions {
  host: string;
  requestId: string;
  /** the client's address, for X-Forwarded-For */
  clientIp?: string;
  /** how long the response head may take (the container is hung, not slow to stream) */
  timeoutMs?: number;
}

/** Forwards `req` (path and query unchanged) and streams the answer back. Rejects when the container is unreachable. */
export async function forward(req: Request, up: Upstream, opts: ForwardOptions): Promise<Response> {
  // The target by string search: new URL() per request is measurable on this path.
  const url = req.url;
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  const target = pathStart < 0 ? "/" : url.slice(pathStart);
  const headers: [string, string][] = [["host", opts.host]];
  let forwardedFor = "";
  req.headers.forEach((value, name) => {
    if (HOP_BY_HOP.has(name) || name === "host" || name.startsWith("x-forwarded-") || name === "x-request-id") {
      if (name === "x-forwarded-for") forwardedFor = value;
      return;
    }
    headers.push([name, value]);
  });
  headers.push(["x-forwarded-host", opts.host], ["x-forwarded-proto", url.startsWith("https:") ? "https" : "http"]);
  if (opts.clientIp) {
    headers.push(["x-forwarded-for", forwardedFor ? `${forwardedFor}, ${opts.clientIp}` : opts.clientIp]);
  }
  headers.push(["x-request-id", opts.requestId]);

  up.inflight++;
  let counted = true;
  const done = () => {
    if (counted) up.inflight--;
    counted = false;
  };
  try {
    const res = await up.pool.request({
      method: req.method,
      target,
      headers,
      body: req.body,
      headTimeoutMs: opts.timeoutMs,
    });
    // Content-Length is the server's to set for a body it sends (bytes or a stream); a HEAD answer keeps it.
    const keepLength = req.method === "HEAD" || NULL_BODY.has(res.status);
    if (!res.body) {
      done();
      const bytes = res.bytes && !NULL_BODY.has(res.status) ? res.bytes : null;
      return respond(bytes as Uint8Array<ArrayBuffer> | null, res, keepLength, opts.requestId);
    }
    // Counted down when the body ends, fails or is cancelled (a client that leaves mid-body).
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const next = await reader.read();
          if (next.done) {
            done();
            controller.close();
          } else {
            controller.enqueue(next.value);
          }
        } catch (err) {
          done();
          controller.error(err);
        }
      },
      cancel(reason) {
        done();
        return reader.cancel(reason);
      },
    });
    return respond(body, res, keepLength, opts.requestId);
  } catch (err) {
    done();
    throw err;
  }
}

/**
 * The client's Response: the upstream's status and headers but the hop-by-hop ones. Headers are appended to the
 * Response's own: `new Response(body, { headers })` converts its init through WebIDL, 17-20 us a call on this VM
 * under load, against 6 us for the Response and three appends. The reason phrase is passed only when it is not the
 * usual "OK" (its check is ~2 us; Deno.serve sends the standard phrase whatever statusText says).
 */
function respond(
  body: BodyInit | null,
  res: UpstreamResponse,
  keepLength: boolean,
  requestId: string,
): Response {
  const init = res.statusText === "" || (res.status === 200 && res.statusText === "OK")
    ? { status: res.status }
    : { status: res.status, statusText: res.statusText };
  const out = new Response(body, init);
  const headers = out.headers;
  // http1.ts gives the names lowercased.
  for (const [name, value] of res.headers) {
    if (!HOP_BY_HOP.has(name) && (keepLength || name !== "content-length")) headers.append(name, value);
  }
  headers.set("x-request-id", requestId);
  return out;
}

/** Resolves with the status when the container answers any HTTP response on `path` (readiness); rejects otherwise. */
export async function probe(up: Upstream, path = "/", timeoutMs = 2_000): Promise<number> {
  const res = await up.pool.request({
    method: "GET",
    target: path,
    headers: [["host", "localhost"], ["user-agent", "tau-readiness"]],
    body: null,
    headTimeoutMs: timeoutMs,
  });
  await res.body?.cancel();
  return res.status;
}
