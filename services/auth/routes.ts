/**
 * auth's HTTP API (mounted under /api): project registration and lookup. A project's webhook secret is shown when the
 * project is created and in its own view (`tau project NAME`), never in the listing: a list is what ends up in logs,
 * dashboards and scripts that read every project. (The whole API answers only on this machine until accounts exist;
 * then the single view will need the owner's token.)
 */
import { Hono } from "hono";
import { jsonBody } from "../http/errors.ts";
import type { Auth, Project } from "./projects.ts";

export function projectView(project: Project, origin: string, withSecret = true) {
  return {
    id: project.id,
    name: project.name,
    createdAt: project.createdAt,
    git: {
      config: `${origin}/git/${project.name}/config.git`,
      code: `${origin}/git/${project.name}/code.git`,
    },
    upstreams: { config: project.repos.config.upstream, code: project.repos.code.upstream },
    webhook: {
      url: `${origin}/api/webhooks/git/${project.name}`,
      ...(withSecret ? { secret: project.webhookSecret } : {}),
    },
  };
}

export function authRoutes(auth: Auth): Hono {
  const app = new Hono();
  app.post("/projects", async (c) => {
    const body = await jsonBody<{ name: string; description?: string; upstreams?: { config?: string; code?: string } }>(
      c.req.raw,
    );
    const project = await auth.createProject(String(body.name ?? ""), body);
    return c.json(projectView(project, new URL(c.req.url).origin), 201);
  });
  app.get("/projects", async (c) => {
    const origin = new URL(c.req.url).origin;
    return c.json((await auth.listProjects()).map((p) => projectView(p, origin, false)));
  });
  app.get("/projects/:name", async (c) => {
    return c.json(projectView(await auth.getProject(c.req.param("name")), new URL(c.req.url).origin));
  });
  return app;
}
