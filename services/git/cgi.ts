/**
 * The bridge to `git http-backend` (CGI): request body on its stdin, CGI headers + body on its stdout.
 *
 * Request bodies go through a spool file, never straight into the backend's stdin. Deno.serve's body reads get
 * slower with every byte the reader has not taken yet: a reader that awaits anything between chunks (a pipe write, a
 * file write, even setTimeout 0) spent 4.6 s of CPU, 99 % memmove, on a 40 MB chunked upload in git's 8 KiB chunks,
 * against 0.46 s for a loop that only reads (measured on Deno 2.9.6; a 100 MB push took 30 s, 700 MB ran at
 * 0.47 MB/s). So one loop only reads, appending each chunk to an unlinked spool file with a synchronous write (page
 * cache, microseconds), and a second loop feeds the backend from the spool at the backend's own pace (index-pack runs
 * at ~25 MB/s here). Memory stays flat: an in-memory queue instead peaked at 409 MB RSS for a 60 MB upload.
 */
import { join } from "node:path";

export interface CgiRequest {
  req: Request;
  pathInfo: string;
  query: string;
  /** Extra environment for the backend (and the git commands and hooks it runs). */
  env: Record<string, string>;
  /** Where spool files live (same disk as the repos, not a tmpfs). */
  spoolDir: string;
  /** Body bytes beyond this are not passed on; git enforces its own limit first (receive.maxInputSize). */
  maxBodyBytes: number;
  /** Whole response read before returning (receive-pack: small report, refs final once the backend exited). */
  collect: boolean;
  signal: AbortSignal;
}

export interface CgiResult {
  status: number;
  headers: Headers;
  /** The rest of stdout: collected bytes, or a stream that ends when the backend has exited. */
  body: Uint8Array | ReadableStream<Uint8Array>;
  /** Request body bytes received, and whether they went past maxBodyBytes. */
  bodyBytes: number;
  overLimit: boolean;
  /** The first bytes of the request body (a push's commands and capabilities). */
  bodyHead: Uint8Array;
}

/**
 * With setsid the backend leads its own process group, so stopping it stops the receive-pack, unpack-objects or
 * pack-objects it runs as well: a signal to http-backend alone left them running, orphaned, still writing the repo.
 */
const SETSID = ["/usr/bin/setsid", "/bin/setsid"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

const HEAD_KEEP = 4096;
/** How long a backend may take to wind down after its stdin closed at shutdown, before it gets SIGTERM. */
const ABORT_GRACE_MS = 2000;
/** After the limit, the rest of an upload is read and dropped for at most this much more (so the client reads the
 * refusal instead of a reset connection); beyond it the connection is cut. */
const DRAIN_AFTER_LIMIT = 64 << 20;

export async function runCgi(r: CgiRequest): Promise<CgiResult> {
  const env: Record<string, string> = {
    ...r.env,
    PATH_INFO: r.pathInfo,
    REQUEST_METHOD: r.req.method,
    QUERY_STRING: r.query,
    CONTENT_TYPE: r.req.headers.get("content-type") ?? "",
    REMOTE_ADDR: "127.0.0.1",
    REMOTE_USER: "tau",
  };
  const protocol = r.req.headers.get("git-protocol");
  if (protocol) env.GIT_PROTOCOL = protocol;
  const encoding = r.req.headers.get("content-encoding");
  if (encoding) env.HTTP_CONTENT_ENCODING = encoding;
  const length = r.req.headers.get("content-length");
  if (length) env.CONTENT_LENGTH = length;

  const child = new Deno.Command(SETSID ?? "git", {
    args: SETSID ? ["git", "http-backend"] : ["http-backend"],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stop = () => {
    try {
      if (SETSID) Deno.kill(-child.pid, "SIGTERM");
      else child.kill("SIGTERM");
    } catch { /* already exited */ }
  };
  // On shutdown the feeder closes the backend's stdin (below): receive-pack then fails on the cut-short pack and
  // removes its quarantine of half-received objects itself, in milliseconds. A signal would leave the quarantine
  // behind (git 2.39 does not clean it up on SIGTERM), so it is only the fallback for a backend that does not exit.
  let grace: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => (grace = setTimeout(stop, ABORT_GRACE_MS));
  r.signal.addEventListener("abort", onAbort, { once: true });
  const exited = child.status.finally(() => {
    clearTimeout(grace);
    r.signal.removeEventListener("abort", onAbort);
  });
  const fed = r.req.body
    ? feedThroughSpool(r.req.body, child.stdin, r.spoolDir, r.maxBodyBytes, r.signal, exited)
    : child.stdin.close().catch(() => {}).then(() => ({ bytes: 0, overLimit: false, head: new Uint8Array(0) }));
  const stderrText = new Response(child.stderr).text();

  const reader = child.stdout.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  let headerEnd = -1;
  let scanned = 0;
  while (headerEnd < 0) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    size += value.length;
    const joined = join1(parts, size);
    parts.splice(0, parts.length, joined);
    headerEnd = findHeaderEnd(joined, Math.max(0, scanned - 3));
    scanned = joined.length;
    if (headerEnd < 0 && size > 64 << 10) break; // a CGI header block is a few hundred bytes
  }
  if (headerEnd < 0) {
    stop();
    const feed = await fed;
    const status = await exited;
    const err = (await stderrText).trim().split("\n").pop();
    const why = r.signal.aborted ? "the node is shutting down" : `git backend failed (exit ${status.code}): ${err}`;
    return {
      status: r.signal.aborted ? 503 : 500,
      headers: new Headers({ "content-type": "text/plain; charset=utf-8" }),
      body: new TextEncoder().encode(why + "\n"),
      bodyBytes: feed.bytes,
      overLimit: feed.overLimit,
      bodyHead: feed.head,
    };
  }
  const buffered = parts[0];
  const headerText = new TextDecoder().decode(buffered.subarray(0, headerEnd));
  const bodyStart = buffered.subarray(headerEnd + (buffered[headerEnd] === 13 ? 4 : 2));
  const headers = new Headers();
  let status = 200;
  for (const line of headerText.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const key = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (key.toLowerCase() === "status") status = parseInt(value) || 200;
    else headers.append(key, value);
  }

  if (r.collect) {
    const rest: Uint8Array[] = [bodyStart.slice()];
    let restSize = bodyStart.length;
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      rest.push(value);
      restSize += value.length;
    }
    const feed = await fed;
    await exited;
    await stderrText;
    return {
      status,
      headers,
      body: join1(rest, restSize),
      bodyBytes: feed.bytes,
      overLimit: feed.overLimit,
      bodyHead: feed.head,
    };
  }
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (bodyStart.length) controller.enqueue(bodyStart.slice());
    },
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) {
        controller.close();
        await fed;
        await exited;
        await stderrText;
      } else controller.enqueue(value);
    },
    async cancel() {
      stop();
      await exited;
    },
  });
  return { status, headers, body, bodyBytes: 0, overLimit: false, bodyHead: new Uint8Array(0) };
}

/**
 * Reads `body` as fast as it arrives into an unlinked spool file (the only await in that loop is the next read) and
 * feeds `stdin` from the spool. Past `limit` the body is drained and dropped (up to DRAIN_AFTER_LIMIT more).
 */
async function feedThroughSpool(
  body: ReadableStream<Uint8Array>,
  stdin: WritableStream<Uint8Array>,
  dir: string,
  limit: number,
  signal: AbortSignal,
  exited: Promise<unknown>,
): Promise<{ bytes: number; overLimit: boolean; head: Uint8Array }> {
  await Deno.mkdir(dir, { recursive: true });
  const path = await Deno.makeTempFile({ dir, prefix: "upload-" });
  const out = await Deno.open(path, { write: true });
  const inp = await Deno.open(path, { read: true });
  await Deno.remove(path); // the open files keep it; a crash leaves nothing behind
  let spooled = 0;
  let received = 0;
  let ended = false;
  let failed: unknown;
  const head = new Uint8Array(HEAD_KEEP);
  let headLength = 0;
  let wake: (() => void) | undefined;
  const wakeFeeder = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const bodyReader = body.getReader();
  const cancelBody = () => bodyReader.cancel().catch(() => {});
  signal.addEventListener("abort", cancelBody, { once: true });
  const reading = (async () => {
    try {
      while (true) {
        const { value, done } = await bodyReader.read();
        if (done) break;
        received += value.length;
        if (headLength < HEAD_KEEP) {
          const n = Math.min(HEAD_KEEP - headLength, value.length);
          head.set(value.subarray(0, n), headLength);
          headLength += n;
        }
        if (received > limit) {
          if (received > limit + DRAIN_AFTER_LIMIT) {
            await bodyReader.cancel().catch(() => {});
            break;
          }
          wakeFeeder();
          continue;
        }
        for (let at = 0; at < value.length;) at += out.writeSync(value.subarray(at));
        spooled += value.length;
        wakeFeeder();
      }
    } catch (err) {
      failed = err; // the client went away, the node is stopping, or the disk is full
    } finally {
      ended = true;
      signal.removeEventListener("abort", cancelBody);
      wakeFeeder();
    }
  })();

  const writer = stdin.getWriter();
  const buf = new Uint8Array(256 << 10);
  let fed = 0;
  let backendGone = false;
  exited.then(() => {
    backendGone = true;
    wakeFeeder();
  });
  try {
    while (!backendGone && !signal.aborted) {
      if (fed < spooled) {
        const n = await inp.read(buf.subarray(0, Math.min(buf.length, spooled - fed)));
        if (!n) continue;
        fed += n;
        await writer.write(buf.slice(0, n));
        continue;
      }
      if (ended || received > limit) break;
      await new Promise<void>((r) => (wake = r));
    }
  } catch {
    // The backend stopped reading (it refused the push, or exited): it has said why on stdout.
  } finally {
    await writer.close().catch(() => {});
    await reading;
    out.close();
    inp.close();
  }
  if (failed && !signal.aborted && received <= limit) console.error(`git upload: request body failed: ${failed}`);
  return { bytes: received, overLimit: received > limit, head: head.slice(0, headLength) };
}

function join1(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function findHeaderEnd(buf: Uint8Array, from: number): number {
  for (let i = from; i + 1 < buf.length; i++) {
    if (buf[i] === 10 && buf[i + 1] === 10) return i;
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

/** Unused spool files of a previous process (a crash between create and unlink) are removed at start. */
export async function clearSpool(dir: string): Promise<void> {
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.startsWith("upload-")) await Deno.remove(join(dir, e.name)).catch(() => {});
    }
  } catch { /* no spool dir yet */ }
}
