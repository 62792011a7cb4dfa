/**
 * Hoarder's HTTP API (mounted under /api, loopback only like the rest of it), for operators and tests:
 *   GET /api/hoarder           this node's copies, and its view of every wanted CID (placement, holders) as of
 *                              its last pass; ?pass=1 runs a pass first, so the view is current
 *   GET /api/hoarder/has/:cid  whether the whole DAG under a CID is on this node ({ cid, local })
 */
import { Hono } from "hono";
import { TauError } from "../../runtime/errors.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import type { Hoarder } from "./hoarder.ts";

export function hoarderRoutes(hoarder: () => Hoarder | undefined, store: ContentStore): Hono {
  const app = new Hono();
  const need = () => {
    const h = hoarder();
    if (!h) {
      throw new TauError("this node keeps no replicas: hoarder runs on nodes of a cloud (tau serve --shape)", {
        status: 404,
        hint: "ask a node started with tau serve --root DIR --shape NAME",
      });
    }
    return h;
  };
  app.get("/hoarder", async (c) => {
    const h = need();
    if (c.req.query("pass")) await h.keeper?.pass(true);
    return c.json(h.status());
  });
  app.get("/hoarder/has/:cid", async (c) => {
    const cid = c.req.param("cid");
    return c.json({ cid, local: await store.has(cid) });
  });
  return app;
}
