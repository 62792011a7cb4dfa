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

export async function jsonBody<T>(req: Request): Promise<T> {
  try {
    return await req.json() as T;
  } catch {
    throw new TauError("request body is not valid JSON", { status: 400 });
  }
}
