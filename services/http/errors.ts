/** Shared by every service's Hono routes: a TauError becomes JSON the CLI can print as one clear line. */
import type { Context } from "hono";
import { TauError } from "../../runtime/errors.ts";

export function errorResponse(err: Error, c: Context): Response {
  if (err instanceof TauError) {
    return c.json(err.toJSON(), err.status as 400);
  }
  console.error(err);
  return c.json({ error: `internal error: ${err.message}`, hint: "see the node's terminal for details" }, 500);
}

/**
 * What a client of the gateway gets when its request fails: one line naming what went wrong and the request id
 * to look for in the node's log, which the X-Request-Id header repeats.
 */
export function requestFailed(
  status: number,
  message: string,
  requestId: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(`${message} (request ${requestId})\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "x-request-id": requestId, ...headers },
  });
}

export async function jsonBody<T>(req: Request): Promise<T> {
  try {
    return await req.json() as T;
  } catch (err) {
    if (err instanceof TauError) throw err; // a body over its cap (413), not a JSON problem
    throw new TauError("request body is not valid JSON", { status: 400 });
  }
}
