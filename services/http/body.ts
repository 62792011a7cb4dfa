/**
 * Request-body caps, applied before anything reads a body (issue 8, #5: a 1 GB POST to a function took the node's
 * RSS from 0.48 to 1.46 GB, because the runtime buffers the whole body). A Content-Length over the cap is answered
 * 413 without reading a byte of the body; a body without one (chunked, or HTTP/2) is counted as it is read and fails
 * with BodyTooLarge at the first byte past the cap, so at most the cap is ever held in memory.
 */
import { TauError } from "../../runtime/errors.ts";
import { formatSize } from "../../runtime/schema/units.ts";

/** A function's body cap when its config names none (`execution.body`); docs/config-schema.md documents it. */
export const DEFAULT_FUNCTION_BODY = 10_000_000;
/** The API takes small JSON documents and webhooks (GitHub push payloads are a few KB; GitHub caps them at 25 MB). */
export const API_BODY = 5_000_000;

export class BodyTooLarge extends TauError {
  constructor(readonly limit: number, readonly what: string) {
    super(`request body too large: ${what} accepts at most ${formatSize(limit)}`, {
      status: 413,
      hint: "send a smaller body",
    });
  }
}

/** A counted body whose stream failed: malformed chunked framing, or a client that went away mid-body. */
export class BodyUnreadable extends TauError {
  constructor(readonly what: string, cause: unknown) {
    super(`request body for ${what} could not be read: it was malformed or the client went away`, {
      status: 400,
      cause,
    });
  }
}

/**
 * `req` itself when its body cannot exceed `limit`; a BodyTooLarge when its Content-Length already does; otherwise
 * a copy of `req` (same URL, method and headers; not its signal) whose body errors with BodyTooLarge past `limit`
 * (and with BodyUnreadable when the client's stream fails).
 */
export function limitBody(req: Request, limit: number, what: string): Request | BodyTooLarge {
  const method = req.method;
  // Deno gives GET, HEAD and CONNECT requests no body whatever the client sends.
  if (method === "GET" || method === "HEAD" || method === "CONNECT") return req;
  const length = req.headers.get("content-length");
  if (length !== null) {
    // Deno's parser has refused a malformed one and reads exactly this many bytes (NaN cannot pass either).
    return Number(length) <= limit ? req : new BodyTooLarge(limit, what);
  }
  const body = req.body;
  if (!body) return req;
  const reader = body.getReader();
  let seen = 0;
  const counted = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (err) {
        controller.error(new BodyUnreadable(what, err));
        return;
      }
      if (next.done) return controller.close();
      seen += next.value.byteLength;
      if (seen <= limit) return controller.enqueue(next.value);
      controller.error(new BodyTooLarge(limit, what));
      reader.cancel().catch(() => {});
    },
    cancel: (reason) => reader.cancel(reason),
  });
  // Not `new Request(req, ...)`: that reads req.signal, and Deno 2.9.6 then prints its legacy-abort warning.
  return new Request(req.url, { method, headers: req.headers, body: counted, duplex: "half" } as RequestInit);
}

/**
 * Headers for a refusal after which the connection closes (see ConnectionControl.closeSoon): `connection: close`,
 * unless the client said so itself (Deno repeats the client's, which would make it "close, close").
 */
export function closingHeaders(req: Request): Record<string, string> {
  return req.headers.get("connection")?.toLowerCase().includes("close") ? {} : { connection: "close" };
}
