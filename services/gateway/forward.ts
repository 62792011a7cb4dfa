/**
 * Gateway forwarding: a node whose shape has `gateway` but not `substrate` hands each request to a substrate node over
 * the `http` RPC protocol (services/p2p/rpc.ts: one call at a time on reused streams), and streams the response back.
 * Bodies of any size stream in both directions in BODY_CHUNK frames; the request id travels with the request, so the
 * serving node's logs and the client's answer name the same request.
 *
 * The substrate node serves it through its own gateway (routes, functions, websites, containers) with forwarding
 * off. The one exception is a deployed container, which runs only on some nodes (the one that deployed it): a gateway
 * that does not run it forwards its requests to a node announcing it (services/p2p/directory.ts), so a request
 * crosses at most two hops (edge -> substrate -> the container's node; `hops` in the request head bounds it).
 * Peers are tried least-loaded first; a request without a body moves to the next peer when one cannot be reached, a
 * request with one cannot (its body is already on its way).
 */
import { TauError } from "../../runtime/errors.ts";
import type { Directory } from "../p2p/directory.ts";
import type { Libp2pNode } from "../p2p/node.ts";
import { type RpcClient, serveRpc } from "../p2p/rpc.ts";
import { requestFailed } from "../http/errors.ts";
import { concatBytes } from "../../runtime/bytes.ts";

export const HTTP_SERVICE = "http";

interface ForwardedHead {
  method: string;
  /** Path and query. */
  target: string;
  host: string;
  headers: [string, string][];
  requestId: string;
  clientIp?: string;
  /** How many gateways forwarded the request so far (1 for the first forward). */
  hops?: number;
}

/** A request forwarded this many times is served where it lands (or answered 503), never forwarded again. */
export const MAX_HOPS = 2;

interface ForwardedResult {
  status: number;
  headers: [string, string][];
  /** A small body travels in the result itself: one frame, and the client answers with a Content-Length. */
  inline?: Uint8Array;
}

/** Bodies up to this size are sent inline (most function answers); larger ones stream. */
const INLINE_MAX = 64 * 1024;

/** How the serving node answers a forwarded request: its own gateway, never forwarding again. */
export type LocalHandler = (
  req: Request,
  host: string,
  clientIp: string | undefined,
  requestId: string,
  hops: number,
) => Promise<Response>;

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"]);

async function* chunks(body: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const c of body) yield c;
}

function toStream(body: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await it.next();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      await it.return?.();
    },
  });
}

/** On a substrate node: answer forwarded requests with the local gateway. */
export async function serveForwarded(libp2p: Libp2pNode, handle: LocalHandler): Promise<void> {
  await serveRpc(libp2p, HTTP_SERVICE, async (call) => {
    if (call.method !== "request") throw new TauError(`http has no method ${call.method}`, { status: 400 });
    const head = call.params as ForwardedHead;
    const hasBody = call.body !== null && head.method !== "GET" && head.method !== "HEAD";
    const req = new Request(`http://${head.host}${head.target}`, {
      method: head.method,
      headers: head.headers,
      body: hasBody ? toStream(call.body!) : undefined,
    });
    const res = await handle(req, head.host, head.clientIp, head.requestId, head.hops ?? 1);
    const result: ForwardedResult = { status: res.status, headers: [...res.headers] };
    if (!res.body) return { result, body: null };
    // Read up to INLINE_MAX: a body that ends by then goes inline, a longer one streams from where reading stopped.
    const reader = res.body.getReader();
    const head_: Uint8Array[] = [];
    let size = 0;
    while (size <= INLINE_MAX) {
      const { value, done } = await reader.read();
      if (done) {
        result.inline = concatBytes(head_);
        return { result, body: null };
      }
      head_.push(value);
      size += value.length;
    }
    const rest = (async function* () {
      yield* head_;
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        yield value;
      }
    })();
    return { result, body: rest };
  });
}

export class Forwarder {
  constructor(
    private readonly rpc: RpcClient,
    private readonly directory: Directory,
    /** This node's peer id: its own (possibly stale) announcement never sends a request back to itself. */
    private readonly self: string,
  ) {}

  /** Whether any substrate node is known to be up. */
  available(): boolean {
    return this.directory.peersFor("substrate").length > 0;
  }

  /** A request to any live substrate node (this gateway runs none of the project's code). */
  async forward(req: Request, host: string, requestId: string, clientIp?: string): Promise<Response> {
    const peers = this.directory.peersFor("substrate");
    if (peers.length === 0) {
      return requestFailed(503, `no node can serve ${host} right now (no substrate node is up)`, requestId);
    }
    return await this.#send(peers.map((p) => p.peer), req, host, requestId, clientIp, 1);
  }

  /** A request for deployed container `key`, which does not run here, to a node that runs it. */
  async forwardContainer(
    req: Request,
    c: { key: string; name: string },
    opts: { host: string; requestId: string; clientIp?: string; hops: number },
  ): Promise<Response> {
    const peers = this.directory.peersRunning(c.key).filter((p) => p.peer !== this.self);
    if (peers.length === 0 || opts.hops >= MAX_HOPS) {
      return requestFailed(503, `container ${c.name} is not running on any node right now`, opts.requestId);
    }
    return await this.#send(peers.map((p) => p.peer), req, opts.host, opts.requestId, opts.clientIp, opts.hops + 1);
  }

  async #send(
    peers: string[],
    req: Request,
    host: string,
    requestId: string,
    clientIp: string | undefined,
    hops: number,
  ): Promise<Response> {
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const head: ForwardedHead = {
      method: req.method,
      target: pathStart < 0 ? "/" : url.slice(pathStart),
      host,
      headers: [...req.headers].filter(([k]) => !HOP_BY_HOP.has(k)),
      requestId,
      clientIp,
      hops,
    };
    const body = req.body ? chunks(req.body) : undefined;
    let last: unknown;
    for (const peer of body ? peers.slice(0, 1) : peers) {
      try {
        const { result, body: resBody } = await this.rpc.call(peer, HTTP_SERVICE, "request", head, {
          body,
          signal: req.signal,
          timeoutMs: 120_000,
        });
        const r = result as ForwardedResult;
        const headers = new Headers(r.headers.filter(([k]) => !HOP_BY_HOP.has(k)));
        if (!headers.has("x-request-id")) headers.set("x-request-id", requestId);
        const nullBody = r.status === 204 || r.status === 304 || req.method === "HEAD";
        const payload = nullBody ? null : r.inline ?? (resBody ? toStream(resBody) : null);
        return new Response(payload as BodyInit | null, { status: r.status, headers });
      } catch (err) {
        last = err;
      }
    }
    const why = last instanceof Error ? last.message : String(last);
    return requestFailed(502, `forwarding to another node failed: ${why}`, requestId);
  }
}
