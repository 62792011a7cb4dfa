/**
 * The multi-node side of a node started with a shape (`tau serve --root DIR --shape NAME`): its libp2p node, the
 * service directory it announces itself in, and the RPC client every service client calls peers with.
 * `tau dev` starts none of this: one process, every service, no p2p listener.
 */
import { freemem, loadavg } from "node:os";
import type { ShapeConfig } from "../config/shape.ts";
import { Directory } from "../p2p/directory.ts";
import { type P2pNode, startP2p } from "../p2p/node.ts";
import { RpcClient } from "../p2p/rpc.ts";
import { freeBytes } from "../../runtime/storage/space.ts";

export interface Cluster {
  config: ShapeConfig;
  p2p: P2pNode;
  directory: Directory;
  rpc: RpcClient;
  stop(): Promise<void>;
}

export async function startCluster(
  config: ShapeConfig,
  deps: {
    kv: Deno.Kv;
    httpUrl: () => string;
    dataDir: string;
    log: (line: string) => void;
    /** Keys of the deployed containers running here (announced, so other gateways can reach them). */
    containers?: () => string[];
  },
): Promise<Cluster> {
  const p2p = await startP2p({
    identity: config.identity,
    listen: config.p2pListen,
    announce: config.p2pAnnounce.length ? config.p2pAnnounce : undefined,
    bootstrap: config.bootstrap,
    swarmKey: config.swarmKey,
    localAddress: config.ip,
    log: deps.log,
  });
  const startedAt = Date.now();
  const cores = navigator.hardwareConcurrency || 1;
  const directory = new Directory({
    libp2p: p2p.libp2p,
    kv: deps.kv,
    cloud: config.cloud,
    connect: (addrs) => p2p.connect(addrs),
    log: deps.log,
    self: async () => ({
      peer: p2p.peerId,
      cloud: config.cloud,
      shape: config.shape,
      services: config.services,
      addrs: p2p.addresses(),
      http: deps.httpUrl(),
      dns: config.services.includes("seer") ? `${config.ip}:${config.ports.dns}` : undefined,
      ip: config.ip,
      load: Math.round((loadavg()[0] / cores) * 100) / 100,
      freeDiskBytes: await freeBytes(deps.dataDir).catch(() => freemem()),
      rssBytes: Deno.memoryUsage().rss,
      startedAt,
      containers: deps.containers?.(),
    }),
  });
  // The directory starts announcing once the node's HTTP listener is bound (node.ts calls directory.start()).
  const rpc = new RpcClient(p2p.libp2p);
  return {
    config,
    p2p,
    directory,
    rpc,
    async stop() {
      directory.stop();
      await p2p.stop();
    },
  };
}
