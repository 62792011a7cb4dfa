/**
 * The commands API (mounted under /api): `tau call` sends a command through it.
 *   POST /api/projects/<p>/commands?protocol=/x/v1&command=ping[&to=<peer id>]
 * The body is the command's data (any bytes); the answer's bytes come back as application/octet-stream. A failure
 * is a TauError as JSON (404 nobody answers, 403 refused, 413 too large, 502 unreachable, 500/504 the function).
 */
import { Hono } from "hono";
import { TauError } from "../../runtime/errors.ts";
import type { Auth } from "../auth/projects.ts";
import type { Commands } from "./commands.ts";

export function commandRoutes(commands: Commands, auth: Auth): Hono {
  const app = new Hono();
  app.post("/projects/:name/commands", async (c) => {
    const project = (await auth.getProject(c.req.param("name"))).name;
    const protocol = c.req.query("protocol") ?? "";
    const command = c.req.query("command") ?? "";
    if (!protocol.startsWith("/") || /\s/.test(protocol)) {
      throw new TauError(`protocol '${protocol}' must start with "/" and have no spaces`, {
        hint: "for example tau call hello /hello/v1 ping",
      });
    }
    if (!command) throw new TauError("a command is required", { hint: "for example tau call hello /hello/v1 ping" });
    const data = new Uint8Array(await c.req.arrayBuffer());
    const to = c.req.query("to") || undefined;
    const answer = await commands.send(project, protocol, command, data, { to });
    return new Response(answer as BodyInit, { headers: { "content-type": "application/octet-stream" } });
  });
  return app;
}
