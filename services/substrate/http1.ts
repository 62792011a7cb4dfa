/**
 * A small HTTP/1.1 client over Unix sockets, with a keep-alive pool: what the gateway speaks to containers.
 * Neither fetch (it treats a Unix socket as a proxy and sends absolute-form request lines, and cannot set Host)
 * nor node:http (correct, but 3-4k requests/s against this client's 17-21k, proxying to an in-process server) fit.
 * Scope, deliberately: origin-form requests, Content-Length or chunked bodies both ways, bodies delimited by
 * close, 1xx skipped, header lines ending in CRLF or bare LF (CGI-style servers). No upgrades, no pipelining.
 */

const CRLF = new Uint8Array([13, 10]);
const MAX_HEAD = 64 * 1024;
const enc = new TextEncoder();
const latin1 = new TextDecoder("latin1");

export interface UpstreamResponse {
  status: number;
  statusText: string;
  /** raw header pairs in order (Set-Cookie may repeat) */
  headers: [string, string][];
  /** null when the answer has no body (HEAD, 204, 304) or came whole in `bytes` */
  body: ReadableStream<Uint8Array> | null;
  /** a small body with a Content-Length, already read */
  bytes?: Uint8Array;
}

export interface UpstreamRequest {
  method: string;
  /** origin-form: path and query */
  target: string;
  headers: [string, string][];
  body: ReadableStream<Uint8Array> | null;
  /** only the wait for the response head; a slow body stream is not cut off */
  headTimeoutMs?: number;
}

/**
 * Response-head deadlines, checked by one unref'd interval rather than a timer and a promise race per request
 * (dropping those and a URL parse took an in-process proxy benchmark from 14k to 17-21k requests/s). A connection
 * past its deadline is closed, which ends its pending read.
 */
const heads = new Map<Connection, number>();
let headTimer: number | undefined;

function watchHead(c: Connection, timeoutMs: number): void {
  heads.set(c, Date.now() + timeoutMs);
  if (headTimer !== undefined) return;
  headTimer = setInterval(() => {
    const now = Date.now();
    for (const [conn, deadline] of heads) {
      if (deadline > now) continue;
      heads.delete(conn);
      conn.timeOut();
    }
    if (heads.size === 0) {
      clearInterval(headTimer);
      headTimer = undefined;
    }
  }, 100) as unknown as number; // Deno's timers are numbers; Node's type declarations say otherwise
  Deno.unrefTimer(headTimer);
}

/** One connection: a read buffer over the socket. */
class Connection {
  #buf = new Uint8Array(0);
  /** reused for every read: a fresh 64 KB buffer per read would be allocated and zeroed each time */
  #scratch = new Uint8Array(64 * 1024);
  #closed = false;
  constructor(readonly conn: Deno.UnixConn) {}

  get closed(): boolean {
    return this.#closed;
  }

  /** Set when the response head did not come in time (see watchHead). */
  timedOut = false;

  timeOut(): void {
    this.timedOut = true;
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch { /* already closed by the peer */ }
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** Reads more into the buffer; false at EOF. */
  async #fill(): Promise<boolean> {
    const n = await this.conn.read(this.#scratch);
    if (n === null) return false;
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(this.#scratch.subarray(0, n), this.#buf.length);
    this.#buf = joined;
    return true;
  }

  /** The response head up to its blank line; null when the peer closed before sending anything. */
  async readHead(): Promise<string | null> {
    for (;;) {
      const end = headEnd(this.#buf);
      if (end) {
        const head = latin1.decode(this.#buf.subarray(0, end.at));
        this.#buf = this.#buf.subarray(end.at + end.length);
        return head;
      }
      if (this.#buf.length > MAX_HEAD) throw new Error("the container's response head is larger than 64 KB");
      if (!(await this.#fill())) {
        if (this.#buf.length === 0) return null;
        throw new Error("the container closed the connection in the middle of a response head");
      }
    }
  }

  /** Up to `max` buffered or freshly read bytes; null at EOF. */
  async readSome(max: number): Promise<Uint8Array | null> {
    if (this.#buf.length === 0 && !(await this.#fill())) return null;
    const out = this.#buf.subarray(0, Math.min(max, this.#buf.length));
    this.#buf = this.#buf.subarray(out.length);
    return out;
  }

  /** One line (without its line end), for chunk sizes and trailers. */
  async readLine(): Promise<string> {
    for (;;) {
      const nl = this.#buf.indexOf(10);
      if (nl >= 0) {
        const line = latin1.decode(this.#buf.subarray(0, nl)).replace(/\r$/, "");
        this.#buf = this.#buf.subarray(nl + 1);
        return line;
      }
      if (this.#buf.length > MAX_HEAD) throw new Error("a chunk line from the container is too long");
      if (!(await this.#fill())) throw new Error("the container closed the connection in the middle of a body");
    }
  }

  async readExactly(n: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let left = n;
    while (left > 0) {
      const part = await this.readSome(left);
      if (!part) throw new Error("the container closed the connection in the middle of a body");
      parts.push(part);
      left -= part.length;
    }
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(n);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

/** Where the head ends: CRLFCRLF, or LFLF from servers that end lines with a bare LF. */
function headEnd(b: Uint8Array): { at: number; length: number } | null {
  for (let i = 0; i + 1 < b.length; i++) {
    if (b[i] !== 10) continue;
    if (b[i + 1] === 10) return { at: i, length: 2 };
    if (b[i + 1] === 13 && b[i + 2] === 10) return { at: i, length: 3 };
  }
  return null;
}

function parseHead(head: string): { version: string; status: number; statusText: string; headers: [string, string][] } {
  const lines = head.split("\n").map((l) => l.replace(/\r$/, ""));
  const m = lines[0].match(/^HTTP\/(1\.[01]) (\d{3})(?: (.*))?$/);
  if (!m) throw new Error(`the container did not answer HTTP/1.x: ${JSON.stringify(lines[0].slice(0, 80))}`);
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return { version: m[1], status: Number(m[2]), statusText: m[3] ?? "", headers };
}

function header(headers: [string, string][], name: string): string | undefined {
  return headers.find(([k]) => k.toLowerCase() === name)?.[1];
}

/** Keep-alive connections to one Unix socket. */
export class UnixHttpPool {
  #idle: Connection[] = [];
  #closed = false;
  constructor(readonly socket: string, readonly maxIdle = 64) {}

  /** Connections open and waiting for the next request. */
  get idle(): number {
    return this.#idle.length;
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.close();
  }

  #release(c: Connection, reusable: boolean): void {
    if (reusable && !this.#closed && !c.closed && this.#idle.length < this.maxIdle) this.#idle.push(c);
    else c.close();
  }

  async #connect(): Promise<Connection> {
    return new Connection(await Deno.connect({ transport: "unix", path: this.socket }));
  }

  /**
   * Sends one request and resolves with the response head and a body stream. A pooled connection the container
   * had already closed (its keep-alive timeout) is noticed before anything was answered; the request (idempotent,
   * without a body: the only kind sent on pooled connections) is then sent again on a fresh connection, once.
   */
  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    // Only a request that may be sent twice goes over a pooled connection: the retry below would repeat it.
    const replayable = !req.body && IDEMPOTENT.has(req.method);
    const pooled = replayable ? this.#idle.pop() : undefined;
    if (pooled) {
      const res = await this.#exchange(pooled, req).catch((err) => {
        pooled.close();
        if (err instanceof StaleConnection) return null;
        throw err;
      });
      if (res) return res;
    }
    const fresh = await this.#connect();
    try {
      return await this.#exchange(fresh, req);
    } catch (err) {
      fresh.close();
      throw err instanceof StaleConnection ? new Error("the container closed the connection without answering") : err;
    }
  }

  async #exchange(c: Connection, req: UpstreamRequest): Promise<UpstreamResponse> {
    const length = header(req.headers, "content-length");
    const chunked = req.body !== null && length === undefined;
    let head = `${req.method} ${req.target} HTTP/1.1\r\n`;
    for (const [k, v] of req.headers) head += `${k}: ${v}\r\n`;
    if (chunked) head += "transfer-encoding: chunked\r\n";
    await c.write(enc.encode(head + "\r\n")).catch(() => {
      throw new StaleConnection();
    });
    if (req.body) await writeBody(c, req.body, chunked);

    watchHead(c, req.headTimeoutMs ?? 60_000);
    try {
      for (;;) {
        let text: string | null;
        try {
          text = await c.readHead();
        } catch (err) {
          if (c.timedOut) throw new Error("the container sent no response head in time");
          if (!(err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe)) throw err;
          text = null;
        }
        if (c.timedOut) throw new Error("the container sent no response head in time");
        if (text === null) throw new StaleConnection();
        const parsed = parseHead(text);
        if (parsed.status >= 100 && parsed.status < 200) continue; // 100 Continue and friends
        return this.#response(c, req, parsed);
      }
    } finally {
      heads.delete(c);
    }
  }

  async #small(
    c: Connection,
    base: Omit<UpstreamResponse, "body" | "bytes">,
    length: number,
    keepAlive: boolean,
  ): Promise<UpstreamResponse> {
    try {
      const bytes = length ? await c.readExactly(length) : new Uint8Array(0);
      this.#release(c, keepAlive);
      return { ...base, body: null, bytes };
    } catch (err) {
      c.close();
      throw err;
    }
  }

  #response(
    c: Connection,
    req: UpstreamRequest,
    head: ReturnType<typeof parseHead>,
  ): UpstreamResponse | Promise<UpstreamResponse> {
    const connection = header(head.headers, "connection")?.toLowerCase() ?? "";
    const keepAlive = head.version === "1.1" ? !connection.includes("close") : connection.includes("keep-alive");
    const base = { status: head.status, statusText: head.statusText, headers: head.headers };
    if (req.method === "HEAD" || head.status === 204 || head.status === 304) {
      this.#release(c, keepAlive);
      return { ...base, body: null };
    }
    const te = header(head.headers, "transfer-encoding")?.toLowerCase();
    const cl = header(head.headers, "content-length");
    let next: () => Promise<Uint8Array | null>;
    let reusable = keepAlive;
    if (te?.includes("chunked")) {
      let left = 0;
      let done = false;
      next = async () => {
        if (done) return null;
        if (left === 0) {
          const size = parseInt((await c.readLine()).split(";")[0], 16);
          if (Number.isNaN(size)) throw new Error("the container sent a malformed chunk size");
          if (size === 0) {
            while ((await c.readLine()) !== "") { /* trailers: dropped */ }
            done = true;
            return null;
          }
          left = size;
        }
        const part = await c.readSome(left);
        if (!part) throw new Error("the container closed the connection in the middle of a body");
        left -= part.length;
        if (left === 0) await c.readLine(); // the CRLF after each chunk
        return part;
      };
    } else if (cl !== undefined) {
      let left = Number(cl);
      if (!Number.isSafeInteger(left) || left < 0) throw new Error(`the container sent Content-Length ${cl}`);
      if (left <= SMALL_BODY) {
        // Small answers are read whole: a body of bytes is much cheaper for Deno's server than a stream.
        return this.#small(c, base, left, keepAlive);
      }
      next = async () => {
        if (left === 0) return null;
        const part = await c.readSome(Math.min(left, 64 * 1024));
        if (!part) throw new Error("the container closed the connection in the middle of a body");
        left -= part.length;
        return part;
      };
    } else {
      reusable = false; // the body ends when the connection does
      next = () => c.readSome(64 * 1024);
    }
    let finished = false;
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const part = await next();
          if (part === null) {
            finished = true;
            this.#release(c, reusable);
            controller.close();
          } else if (part.length) {
            controller.enqueue(part);
          }
        } catch (err) {
          finished = true;
          c.close();
          controller.error(err);
        }
      },
      cancel: () => {
        if (!finished) c.close();
      },
    });
    return { ...base, body };
  }
}

class StaleConnection extends Error {}

/** Methods RFC 9110 lets a client repeat (section 9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** Bodies up to this size are buffered instead of streamed. */
const SMALL_BODY = 64 * 1024;

async function writeBody(c: Connection, body: ReadableStream<Uint8Array>, chunked: boolean): Promise<void> {
  for await (const chunk of body) {
    if (chunk.length === 0) continue;
    if (chunked) {
      await c.write(enc.encode(chunk.length.toString(16)));
      await c.write(CRLF);
      await c.write(chunk);
      await c.write(CRLF);
    } else {
      await c.write(chunk);
    }
  }
  if (chunked) await c.write(enc.encode("0\r\n\r\n"));
}
