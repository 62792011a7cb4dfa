/**
 * The secrets API (mounted under /api). A value goes in as the raw request body of a PUT and never comes out: the
 * listing answers names and when each was set. Like the rest of the control plane it answers only on the node's
 * machine (or with the cloud's admin token).
 */
import { Hono } from "hono";
import type { Auth } from "../auth/projects.ts";
import type { Secrets } from "./secrets.ts";

export function secretsRoutes(secrets: Secrets, auth: Auth): Hono {
  const app = new Hono();
  app.get("/projects/:name/secrets", async (c) => {
    const project = (await auth.getProject(c.req.param("name"))).name;
    return c.json({ project, secrets: await secrets.list(project) });
  });
  app.put("/projects/:name/secrets/:secret", async (c) => {
    const project = (await auth.getProject(c.req.param("name"))).name;
    const value = new Uint8Array(await c.req.arrayBuffer());
    return c.json({ project, ...await secrets.set(project, c.req.param("secret"), value) });
  });
  app.delete("/projects/:name/secrets/:secret", async (c) => {
    const project = (await auth.getProject(c.req.param("name"))).name;
    await secrets.remove(project, c.req.param("secret"));
    return c.json({ project, name: c.req.param("secret"), removed: true });
  });
  return app;
}
