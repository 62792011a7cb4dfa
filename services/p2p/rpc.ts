/**
 * Request/response between nodes: one libp2p protocol per service (`/tau/<service>/1.0.0`), CBOR messages with a
 * varint length prefix, over long-lived yamux streams. A stream carries one call at a time and is then reused, like
 * an HTTP/1.1 keep-alive connection: platform-facts measured ~2 ms for a call on a new stream and ~0.15 ms on a
 * reused one. Each call is a head, optional body chunks, and an end marker, in both directions, so bodies of any size
 * stream with yamux's flow control and never sit whole in memory.
 *
 * Errors cross the wire as TauError fields (message, hint, status), so a remote failure reads like a local one.
 */
import { decode } from "cborg";
import { LengthPrefixedDecoder } from "@libp2p/utils";
import type { Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { TauError } from "../../runtime/errors.ts";
import { encodeFrame } from "../../runtime/frames.ts";
import type { Libp2pNode } from "./node.ts";

export const protocolOf = (service: string) => `/tau/${service}/1.0.0`;

/** Largest frame accepted: body chunks are cut at BODY_CHUNK, so only a huge head could come near it. */
const MAX_FRAME = 8 << 20;
export const BODY_CHUNK = 256 << 10;
/** Enough for the gateway's concurrency: a call that finds no idle stream pays a protocol negotiation (~1-2 ms). */
const IDLE_STREAMS_PER_PEER = 256;
const CALL_TIMEOUT_MS = 30_000;

type Frame =
  | { t: "req"; m: string; p: unknown; b: boolean }
  | { t: "res"; r: unknown; b: boolean }
  | { t: "err"; e: { message: string; hint?: string; status?: number } }
  | { t: "data"; d: Uint8Array }
  | { t: "end" };

export interface RpcRequest {
  method: string;
  params: unknown;
  /** The request body, when the caller sent one; a handler must read it to the end or leave it to be drained. */
  body: AsyncIterable<Uint8Array> | null;
  /** Peer id of the caller (authenticated by noise). */
  peer: string;
}

export interface RpcResponse {
  result: unknown;
  body?: AsyncIterable<Uint8Array> | Uint8Array | null;
}

export type RpcHandler = (req: RpcRequest) => Promise<RpcResponse>;

/** Reads whole frames off a stream, in order, across calls. */
class FrameReader {
  readonly #it: AsyncIterator<Uint8Array | { subarray(): Uint8Array }>;
  // The stream hands over everything buffered as one chunk (17 MB seen under a 64 MiB body), so the decoder's buffer
  // is bounded by the stream's own read buffer, not here; MAX_FRAME bounds each frame.
  readonly #decoder = new LengthPrefixedDecoder({ maxDataLength: MAX_FRAME, maxBufferSize: 1 << 30 });
  /** Frames of the last chunk, decoded lazily so a big chunk is not copied into a list first. */
  #frames: Iterator<{ subarray(): Uint8Array }> | undefined;

  constructor(stream: Stream) {
    this.#it = stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array | { subarray(): Uint8Array }>;
  }

  async next(): Promise<Frame | null> {
    while (true) {
      const frame = this.#frames?.next();
      if (frame && !frame.done) return decode(frame.value.subarray()) as Frame;
      const { value, done } = await this.#it.next();
      if (done) return null;
      this.#frames = this.#decoder.decode(value instanceof Uint8Array ? value : value.subarray());
    }
  }
}

async function send(stream: Stream, frame: Frame): Promise<void> {
  if (!stream.send(encodeFrame(frame))) await stream.onDrain();
}

async function sendBody(stream: Stream, body: AsyncIterable<Uint8Array> | Uint8Array | null | undefined) {
  if (body) {
    const chunks = body instanceof Uint8Array ? [body] : body;
    for await (const chunk of chunks) {
      for (let at = 0; at < chunk.length; at += BODY_CHUNK) {
        await send(stream, { t: "data", d: chunk.subarray(at, at + BODY_CHUNK) });
      }
    }
  }
  await send(stream, { t: "end" });
}

/** The body frames of one message as an async iterable; `drain()` skips what the reader did not consume. */
function bodyOf(reader: FrameReader): { body: AsyncIterable<Uint8Array>; drain(): Promise<void> } {
  let ended = false;
  const body: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      while (!ended) {
        const f = await reader.next();
        if (!f) throw new TauError("peer closed the stream in the middle of a body", { status: 502 });
        if (f.t === "end") {
          ended = true;
          return;
        }
        if (f.t !== "data") throw new TauError(`peer sent ${f.t} in the middle of a body`, { status: 502 });
        yield f.d;
      }
    },
  };
  return {
    body,
    async drain() {
      // deno-lint-ignore no-empty
      for await (const _ of body) {}
    },
  };
}

function errorFrame(err: unknown): Frame {
  if (err instanceof TauError) return { t: "err", e: { message: err.message, hint: err.hint, status: err.status } };
  return { t: "err", e: { message: err instanceof Error ? err.message : String(err), status: 500 } };
}

/** Serve `handler` on the service's protocol: each inbound stream is a loop of calls. */
export async function serveRpc(libp2p: Libp2pNode, service: string, handler: RpcHandler): Promise<void> {
  await libp2p.handle(protocolOf(service), async (stream, connection) => {
    const peer = connection.remotePeer.toString();
    const reader = new FrameReader(stream);
    try {
      while (true) {
        const head = await reader.next();
        if (!head) break;
        if (head.t !== "req") throw new Error(`expected a request, got ${head.t}`);
        const req = head.b ? bodyOf(reader) : null;
        let res: RpcResponse | undefined;
        let failure: Frame | undefined;
        try {
          res = await handler({ method: head.m, params: head.p, body: req?.body ?? null, peer });
        } catch (err) {
          failure = errorFrame(err);
        }
        await req?.drain();
        if (failure || !res) {
          await send(stream, failure!);
          continue;
        }
        const hasBody = res.body !== undefined && res.body !== null;
        await send(stream, { t: "res", r: res.result ?? null, b: hasBody });
        if (hasBody) await sendBody(stream, res.body);
      }
      await stream.close();
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }, { maxInboundStreams: 1024, runOnLimitedConnection: false });
}

interface PooledStream {
  stream: Stream;
  reader: FrameReader;
}

/** Calls services on other nodes, reusing idle streams per peer and protocol. */
export class RpcClient {
  readonly #libp2p: Libp2pNode;
  readonly #idle = new Map<string, PooledStream[]>();

  constructor(libp2p: Libp2pNode) {
    this.#libp2p = libp2p;
  }

  /**
   * One call. With `opts.body` the request streams a body; the response body (if the handler sent one) is returned
   * as an async iterable that must be read to the end for the stream to be reused.
   */
  async call(
    peer: string,
    service: string,
    method: string,
    params: unknown,
    opts: { body?: AsyncIterable<Uint8Array> | Uint8Array; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<{ result: unknown; body: AsyncIterable<Uint8Array> | null }> {
    const key = `${peer} ${service}`;
    const pooled = this.#idle.get(key)?.pop() ?? await this.#open(peer, service, opts.signal);
    const { stream, reader } = pooled;
    const timer = setTimeout(() => stream.abort(new Error("call timed out")), opts.timeoutMs ?? CALL_TIMEOUT_MS);
    const onAbort = () => stream.abort(new Error("call aborted"));
    opts.signal?.addEventListener("abort", onAbort);
    const done = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    };
    let pooledAgain = false;
    try {
      await send(stream, { t: "req", m: method, p: params ?? null, b: opts.body !== undefined });
      if (opts.body !== undefined) await sendBody(stream, opts.body);
      const head = await reader.next();
      if (!head) throw new TauError(`${service} on ${peer} closed the stream`, { status: 502 });
      if (head.t === "err") {
        done();
        this.#release(key, pooled);
        // The call is over and its stream back in the pool, still good: the catch below must not abort it.
        pooledAgain = true;
        throw new TauError(head.e.message, { hint: head.e.hint, status: head.e.status ?? 500 });
      }
      if (head.t !== "res") throw new TauError(`${service} on ${peer} answered ${head.t}`, { status: 502 });
      if (!head.b) {
        done();
        this.#release(key, pooled);
        return { result: head.r, body: null };
      }
      const { body } = bodyOf(reader);
      const release = () => this.#release(key, pooled);
      const streamed: AsyncIterable<Uint8Array> = {
        async *[Symbol.asyncIterator]() {
          try {
            yield* body;
            release();
          } finally {
            done();
          }
        },
      };
      return { result: head.r, body: streamed };
    } catch (err) {
      done();
      if (!pooledAgain && stream.status === "open") stream.abort(err instanceof Error ? err : new Error(String(err)));
      if (err instanceof TauError) throw err;
      throw new TauError(`calling ${service}.${method} on ${peer} failed: ${(err as Error).message}`, {
        status: 502,
        cause: err,
      });
    }
  }

  async #open(peer: string, service: string, signal?: AbortSignal): Promise<PooledStream> {
    const stream = await this.#libp2p.dialProtocol(peerIdFromString(peer), protocolOf(service), {
      signal: signal ?? AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    return { stream, reader: new FrameReader(stream) };
  }

  #release(key: string, pooled: PooledStream): void {
    if (pooled.stream.status !== "open") return;
    const idle = this.#idle.get(key) ?? [];
    if (idle.length >= IDLE_STREAMS_PER_PEER) {
      pooled.stream.close().catch(() => {});
      return;
    }
    idle.push(pooled);
    this.#idle.set(key, idle);
  }

  /** Drop pooled streams to a peer (it went away). */
  forget(peer: string): void {
    for (const [key, streams] of this.#idle) {
      if (!key.startsWith(`${peer} `)) continue;
      for (const s of streams) s.stream.abort(new Error("peer forgotten"));
      this.#idle.delete(key);
    }
  }
}
