/**
 * GET /api/projects/:project/logs[?function=NAME]: the project's function logs from every node, as they happen, one
 * JSON LogLine per line (NDJSON), until the client goes away. A blank line every KEEPALIVE_MS shows a client that
 * left (the write fails) and keeps proxies from closing a quiet stream.
 */
import { Hono } from "hono";
import type { Auth } from "../auth/projects.ts";
import type { LogBus } from "./bus.ts";

const KEEPALIVE_MS = 10_000;

export function logRoutes(logs: LogBus, auth: Auth): Hono {
  const app = new Hono();
  app.get("/projects/:project/logs", async (c) => {
    const project = (await auth.getProject(c.req.param("project"))).name; // 404 with a hint when it does not exist
    const fn = c.req.query("function") || undefined;
    const enc = new TextEncoder();
    let stop = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const unfollow = logs.follow(
          project,
          fn,
          (line) => controller.enqueue(enc.encode(JSON.stringify(line) + "\n")),
        );
        const keepalive = setInterval(() => {
          try {
            controller.enqueue(enc.encode("\n"));
          } catch {
            stop();
          }
        }, KEEPALIVE_MS);
        stop = () => {
          clearInterval(keepalive);
          unfollow();
        };
        // The first bytes go out at once: the client knows it is following (and an error would have come before).
        controller.enqueue(enc.encode("\n"));
      },
      cancel() {
        stop();
      },
    });
    return new Response(body, { headers: { "content-type": "application/x-ndjson", "cache-control": "no-store" } });
  });
  return app;
}
