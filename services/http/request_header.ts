/**
 * One request header without materialising all of them. `req.headers` copies every header out of Deno's HTTP layer
 * into a new Headers object (one op, an array per header, a Headers list): on a gateway hello world that is a few
 * microseconds of the ~20 a request costs. Deno 2.9.6 keeps the server-side request under Symbol(request) with a
 * `header(name)` method that asks hyper for one header (one op, one string); this uses it when it is there and
 * falls back to `req.headers` otherwise (a Request built in JS, another Deno), so the answer is the same either way.
 * services/http/request_header_test.ts checks that the pinned Deno still has it.
 */

type InnerRequest = { header?: (name: string) => string | null };

let innerKey: symbol | null | undefined;

function innerOf(req: Request): InnerRequest | undefined {
  if (innerKey === undefined) {
    innerKey = Object.getOwnPropertySymbols(req).find((s) => s.description === "request") ?? null;
  }
  return innerKey ? (req as unknown as Record<symbol, InnerRequest | undefined>)[innerKey] : undefined;
}

/** Whether this request's headers can be read one at a time (Deno's server request, still open). */
export function hasFastHeaders(req: Request): boolean {
  return typeof innerOf(req)?.header === "function";
}

/** `req.headers.get(name)` for a lowercase `name`, without copying the other headers when Deno allows it. */
export function requestHeader(req: Request, name: string): string | null {
  const inner = innerOf(req);
  if (inner && typeof inner.header === "function") {
    try {
      return inner.header(name);
    } catch { /* closed or not a server request: the public way below */ }
  }
  return req.headers.get(name);
}
