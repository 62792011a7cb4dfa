/** tns's HTTP API (mounted under /api): what a project serves, its history, and rollback. */
import { Hono } from "hono";
import { jsonBody } from "../http/errors.ts";
import type { Auth } from "../auth/projects.ts";
import { SERVED_BRANCH, type Tns } from "./tns.ts";
import type { Rollout } from "../rollout/rollout.ts";

export function tnsRoutes(tns: Tns, rollout: Rollout, auth: Auth): Hono {
  const app = new Hono();
  app.get("/projects/:name/deployments", async (c) => {
    const project = (await auth.getProject(c.req.param("name"))).name;
    const branch = c.req.query("branch") ?? SERVED_BRANCH;
    return c.json({
      project,
      branch,
      current: await tns.currentId(project, branch),
      history: await tns.history(project, branch),
    });
  });
  app.post("/projects/:name/rollback", async (c) => {
    const project = (await auth.getProject(c.req.param("name"))).name;
    const body = await jsonBody<{ branch?: string; to?: string }>(c.req.raw);
    const ref = await rollout.rollback(project, body.branch ?? SERVED_BRANCH, body.to || undefined);
    return c.json({ project, branch: body.branch ?? SERVED_BRANCH, current: ref });
  });
  return app;
}
