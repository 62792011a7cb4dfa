/**
 * A small HTTP/1.1 client over Unix sockets, with a keep-alive pool: what the gateway speaks to containers.
 * Neither fetch (it treats a Unix socket as a proxy and sends absolute-form request lines, and cannot set Host)
 * nor node:http (correct, but 3-4k requests/s against this client's 17-21k, proxying to an in-process server) fit.
 * Scope, deliberately: origin-form requests, Content-Length or chunked bodies both ways, bodies delimited by
 * close, 1xx skipped, header lines ending in CRLF or bare LF (CGI-style servers). No upgrades, no pipelining.
 */

const CRLF = new Uint8Array([13, 10]);
/** A response head must fit in a connection's read buffer. */
const MAX_HEAD = 64 * 1024;
const READ_BUFFER = MAX_HEAD;
/** Request heads up to this size are encoded without an allocation. */
const HEAD_BUFFER = 8 * 1024;
const enc = new TextEncoder();
const latin1 = new TextDecoder("latin1");

export interface UpstreamResponse {
  status: number;
  statusText: string;
  /** header pairs in order (Set-Cookie may repeat), names lowercased */
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
 * Response-head deadlines, checked by one unref'd interval over the open connections rather than a timer and a
 * promise race per request (dropping those and a URL parse took an in-process proxy benchmark from 14k to 17-21k
 * requests/s). A request only writes its connection's deadline; a connection past it is closed, which ends its
 * pending read.
 */
const open = new Set<Connection>();
let headTimer: number | undefined;

function track(c: Connection): void {
  open.add(c);
  if (headTimer !== undefined) return;
  headTimer = setInterval(() => {
    const now = Date.now();
    for (const conn of open) if (conn.deadline !== 0 && conn.deadline <= now) conn.timeOut();
    if (open.size === 0) {
      clearInterval(headTimer);
      headTimer = undefined;
    }
  }, 100) as unknown as number; // Deno's timers are numbers; Node's type declarations say otherwise
  Deno.unrefTimer(headTimer);
}

/**
 * One connection: a read buffer over the socket. Unread bytes are `#buf[#start, #end)`; reads go after them, and
 * what leaves the buffer (a body part) is copied out, so one buffer serves every response on the connection.
 */
class Connection {
  #buf = new Uint8Array(READ_BUFFER);
  /** request heads are encoded into this (TextEncoder.encode allocates a new buffer each time: ~5 us here) */
  readonly headBuf = new Uint8Array(HEAD_BUFFER);
  #start = 0;
  #end = 0;
  #closed = false;
  /** When the response head must have come (ms since the epoch), or 0 while no request waits for one. */
  deadline = 0;
  /** Set when the response head did not come in time. */
  timedOut = false;

  constructor(readonly conn: Deno.UnixConn) {
    track(this);
  }

  get closed(): boolean {
    return this.#closed;
  }

  timeOut(): void {
    this.timedOut = true;
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    open.delete(this);
    try {
      this.conn.close();
    } catch { /* already closed by the peer */ }
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = await this.conn.write(bytes);
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** Reads more into the buffer; false at EOF. */
  async #fill(): Promise<boolean> {
    const n = await this.conn.read(this.#room());
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /** Where the next read goes; makes room by moving the unread bytes to the front. */
  #room(): Uint8Array {
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
    } else if (this.#end === this.#buf.length) {
      if (this.#start === 0) throw new Error("the container's response head is larger than 64 KB");
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    return this.#buf.subarray(this.#end);
  }

  /** The response head up to its blank line, parsed; null when the peer closed before sending anything. */
  async readHead(): Promise<Head | null> {
    for (;;) {
      const at = headEnd(this.#buf, this.#start, this.#end);
      if (at >= 0) {
        const head = parseHead(text(this.#buf, this.#start, at));
        // Past the blank line: LF LF, or LF CR LF.
        this.#start = at + (this.#buf[at + 1] === 10 ? 2 : 3);
        return head;
      }
      // The read inline rather than through #fill: one async frame less on every request.
      const n = await this.conn.read(this.#room());
      if (n === null) {
        if (this.#start === this.#end) return null;
        throw new Error("the container closed the connection in the middle of a response head");
      }
      this.#end += n;
    }
  }

  /** Up to `max` buffered or freshly read bytes (a copy); null at EOF. */
  async readSome(max: number): Promise<Uint8Array | null> {
    if (this.#start === this.#end && !(await this.#fill())) return null;
    const end = Math.min(this.#end, this.#start + max);
    const out = this.#buf.slice(this.#start, end);
    this.#start = end;
    return out;
  }

  /** One line (without its line end), for chunk sizes and trailers. */
  async readLine(): Promise<string> {
    for (;;) {
      const nl = this.#buf.subarray(this.#start, this.#end).indexOf(10);
      if (nl >= 0) {
        const line = latin1.decode(this.#buf.subarray(this.#start, this.#start + nl)).replace(/\r$/, "");
        this.#start += nl + 1;
        return line;
      }
      if (this.#end - this.#start >= MAX_HEAD) throw new Error("a chunk line from the container is too long");
      if (!(await this.#fill())) throw new Error("the container closed the connection in the middle of a body");
    }
  }

  /** `n` bytes when they are all buffered already (the usual case: they came with the head), else null. */
  takeBuffered(n: number): Uint8Array | null {
    if (this.#end - this.#start < n) return null;
    const out = carve(this.#buf, this.#start, n);
    this.#start += n;
    return out;
  }

  /** `n` bytes, for a small body. */
  async readExactly(n: number): Promise<Uint8Array> {
    const buffered = this.takeBuffered(n);
    if (buffered) return buffered;
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const part = await this.readSome(n - off);
      if (!part) throw new Error("the container closed the connection in the middle of a body");
      out.set(part, off);
      off += part.length;
    }
    return out;
  }
}

/**
 * Small bodies are copied out of the read buffer into views of a shared 64 KB slab that only ever moves forward,
 * rather than into a buffer of their own: a new ArrayBuffer per response (Uint8Array.slice) costs 1.5-6 us here,
 * a view of the slab a fraction of that. A slab lives while a body cut from it does.
 */
const SLAB = 64 * 1024;
let slab = new Uint8Array(SLAB);
let slabUsed = 0;

function carve(from: Uint8Array, start: number, n: number): Uint8Array {
  if (n > SLAB / 4) return from.slice(start, start + n);
  if (slabUsed + n > SLAB) {
    slab = new Uint8Array(SLAB);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + n);
  out.set(from.subarray(start, start + n));
  slabUsed += n;
  return out;
}

/** Latin-1 text of `b[start, end)`: fromCharCode for a typical head, TextDecoder (an op call) for a large one. */
function text(b: Uint8Array, start: number, end: number): string {
  const view = b.subarray(start, end);
  return end - start <= 4096 ? String.fromCharCode.apply(null, view as unknown as number[]) : latin1.decode(view);
}

/** Where the head ends (the LF that starts its blank line: LFLF or LFCRLF), or -1. */
function headEnd(b: Uint8Array, start: number, end: number): number {
  for (let i = start; i + 1 < end; i++) {
    if (b[i] !== 10) continue;
    if (b[i + 1] === 10) return i;
    if (b[i + 1] === 13 && i + 2 < end && b[i + 2] === 10) return i;
  }
  return -1;
}

interface Head {
  version: string;
  status: number;
  statusText: string;
  /** header pairs in order (Set-Cookie may repeat), names lowercased */
  headers: [string, string][];
  /** the values the client itself needs, found in the same pass */
  connection: string;
  transferEncoding: string;
  contentLength: string | undefined;
}

const STATUS_LINE = /^HTTP\/(1\.[01]) (\d{3})(?: (.*))?$/;

/** One pass over the head's lines (CRLF or bare LF). */
function parseHead(head: string): Head {
  let nl = head.indexOf("\n");
  const first = (nl < 0 ? head : head.slice(0, nl)).replace(/\r$/, "");
  const m = STATUS_LINE.exec(first);
  if (!m) throw new Error(`the container did not answer HTTP/1.x: ${JSON.stringify(first.slice(0, 80))}`);
  const out: Head = {
    version: m[1],
    status: Number(m[2]),
    statusText: m[3] ?? "",
    headers: [],
    connection: "",
    transferEncoding: "",
    contentLength: undefined,
  };
  while (nl >= 0) {
    const from = nl + 1;
    nl = head.indexOf("\n", from);
    let to = nl < 0 ? head.length : nl;
    if (to > from && head.charCodeAt(to - 1) === 13) to--;
    const colon = head.indexOf(":", from);
    if (colon <= from || colon >= to) continue;
    const name = head.slice(from, colon).trim().toLowerCase();
    const value = head.slice(colon + 1, to).trim();
    out.headers.push([name, value]);
    if (name === "content-length") out.contentLength ??= value;
    else if (name === "transfer-encoding") out.transferEncoding ||= value.toLowerCase();
    else if (name === "connection") out.connection ||= value.toLowerCase();
  }
  return out;
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
    let head = req.method + " " + req.target + " HTTP/1.1\r\n";
    let length = false;
    const headers = req.headers;
    for (let i = 0; i < headers.length; i++) {
      const k = headers[i][0];
      head += k + ": " + headers[i][1] + "\r\n";
      if (req.body !== null && k.length === 14 && k.toLowerCase() === "content-length") length = true;
    }
    const chunked = req.body !== null && !length;
    if (chunked) head += "transfer-encoding: chunked\r\n";
    head += "\r\n";
    const into = enc.encodeInto(head, c.headBuf);
    const bytes = into.read === head.length ? c.headBuf.subarray(0, into.written) : enc.encode(head);
    try {
      await c.write(bytes);
    } catch {
      throw new StaleConnection();
    }
    if (req.body) await writeBody(c, req.body, chunked);

    c.deadline = Date.now() + (req.headTimeoutMs ?? 60_000);
    try {
      for (;;) {
        let parsed: Head | null;
        try {
          parsed = await c.readHead();
        } catch (err) {
          if (c.timedOut) throw new Error("the container sent no response head in time");
          if (!(err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe)) throw err;
          parsed = null;
        }
        if (c.timedOut) throw new Error("the container sent no response head in time");
        if (parsed === null) throw new StaleConnection();
        if (parsed.status >= 100 && parsed.status < 200) continue; // 100 Continue and friends
        c.deadline = 0;
        return this.#response(c, req, parsed);
      }
    } finally {
      c.deadline = 0;
    }
  }

  /** A small body read whole: without an await when it came with the head, as it usually does. */
  #small(c: Connection, head: Head, length: number, keepAlive: boolean): UpstreamResponse | Promise<UpstreamResponse> {
    const answer = (bytes: Uint8Array): UpstreamResponse => {
      this.#release(c, keepAlive);
      return { status: head.status, statusText: head.statusText, headers: head.headers, body: null, bytes };
    };
    const buffered = c.takeBuffered(length);
    if (buffered) return answer(buffered);
    return c.readExactly(length).then(answer, (err) => {
      c.close();
      throw err;
    });
  }

  #response(c: Connection, req: UpstreamRequest, head: Head): UpstreamResponse | Promise<UpstreamResponse> {
    const keepAlive = head.version === "1.1"
      ? !head.connection.includes("close")
      : head.connection.includes("keep-alive");
    const base = { status: head.status, statusText: head.statusText, headers: head.headers };
    if (req.method === "HEAD" || head.status === 204 || head.status === 304) {
      this.#release(c, keepAlive);
      return { ...base, body: null };
    }
    const cl = head.contentLength;
    let next: () => Promise<Uint8Array | null>;
    let reusable = keepAlive;
    if (head.transferEncoding.includes("chunked")) {
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
        return this.#small(c, head, left, keepAlive);
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
