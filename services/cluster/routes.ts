/** The cluster's HTTP API (mounted under /api): the nodes this node knows. */
import { Hono } from "hono";
import type { Cluster } from "./cluster.ts";
import type { NodeAnnouncement } from "../p2p/directory.ts";

export interface NodeView extends Omit<NodeAnnouncement, "at"> {
  alive: boolean;
  /** ms since this node last heard it. */
  lastHeartbeatMs: number;
}

/** `local` describes a node that runs without p2p (tau dev): the cloud is this one node. */
export function clusterRoutes(
  cluster: () => Cluster | undefined,
  local: () => Promise<Omit<NodeAnnouncement, "at">>,
): Hono {
  const app = new Hono();
  app.get("/nodes", async (c) => {
    const cl = cluster();
    if (!cl) return c.json([{ ...(await local()), alive: true, lastHeartbeatMs: 0 } satisfies NodeView]);
    const now = Date.now();
    return c.json(cl.directory.list().map(({ seen, at: _at, ...e }) => ({ ...e, lastHeartbeatMs: now - seen })));
  });
  return app;
}
