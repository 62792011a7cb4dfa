/** patrick's HTTP API (mounted under /api): builds, their logs, and the external webhook. */
import { Hono } from "hono";
import { TauError } from "../../runtime/errors.ts";
import type { Auth } from "../auth/projects.ts";
import type { GitHosting } from "../git/hosting.ts";
import type { Patrick } from "./jobs.ts";
import { acceptWebhook } from "./webhook.ts";

export function patrickRoutes(patrick: Patrick, deps: { auth: Auth; git: GitHosting }): Hono {
  const app = new Hono();
  app.get("/builds", async (c) => {
    const project = c.req.query("project");
    if (project) await deps.auth.getProject(project);
    return c.json(await patrick.listJobs(project, listLimit(c.req.query("limit"))));
  });
  app.get("/builds/:id", async (c) => {
    const id = c.req.param("id");
    if (c.req.query("wait")) return c.json(await patrick.waitFor(id));
    return c.json(await patrick.getJob(id));
  });
  app.get("/builds/:id/log", async (c) => {
    const stream = await patrick.logStream(c.req.param("id"), c.req.query("follow") === "1");
    return new Response(stream, { headers: { "content-type": "text/plain; charset=utf-8" } });
  });
  app.post("/webhooks/git/:project", async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    const event = await acceptWebhook(c.req.param("project"), body, c.req.header("x-hub-signature-256") ?? null, deps);
    if (!event) return c.json({ accepted: false, reason: "not a branch push" }, 202);
    const job = await patrick.onPush(event);
    return c.json({ accepted: true, job }, 202);
  });
  return app;
}

/** The most builds one listing returns. */
export const MAX_LIST_LIMIT = 1000;

function listLimit(raw: string | undefined): number {
  if (raw === undefined) return 50;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_LIST_LIMIT) {
    throw new TauError(`limit=${raw.slice(0, 20)} is not a whole number from 1 to ${MAX_LIST_LIMIT}`, {
      hint: "for example /api/builds?limit=20",
    });
  }
  return n;
}
