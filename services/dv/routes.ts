/** Domain validation's HTTP API (mounted under /api): the TXT records a project's custom domains need. */
import { Hono } from "hono";
import type { Auth } from "../auth/projects.ts";
import { type DvOptions, dvRecord } from "./dv.ts";

export function dvRoutes(auth: Auth, dv: DvOptions | undefined): Hono {
  const app = new Hono();
  app.get("/projects/:name/dv", async (c) => {
    const project = await auth.getProject(c.req.param("name"));
    if (!dv) return c.json({ enabled: false, records: [] });
    const generated = dv.generated.toLowerCase();
    const fqdns = c.req.queries("fqdn") ?? [];
    const records = await Promise.all(
      fqdns.map((f) => f.toLowerCase()).filter((f) => f !== generated && !f.endsWith(`.${generated}`))
        .map((f) => dvRecord(dv.keys, project.name, f)),
    );
    return c.json({ enabled: true, generated: dv.generated, records });
  });
  return app;
}
