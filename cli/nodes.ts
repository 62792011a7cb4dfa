/** `tau nodes`: every node the cloud knows, one line each (or JSON); `tau memory`: where one node's memory goes. */
import type { Command } from "commander";
import { api, cloudUrl } from "./client.ts";
import type { NodeView } from "../services/cluster/routes.ts";
import { formatMemory, type NodeMemory } from "../services/node_memory.ts";

function size(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(1)}G`;
  return `${Math.round(bytes / (1 << 20))}M`;
}

export function formatNode(n: NodeView): string {
  const health = n.alive
    ? `up, heartbeat ${(n.lastHeartbeatMs / 1000).toFixed(1)}s ago`
    : `DOWN since ${Math.round(n.lastHeartbeatMs / 1000)}s`;
  const addrs = [n.http, ...n.addrs.map((a) => a.replace(/\/p2p\/.*$/, ""))].join(" ");
  return `${n.peer}  ${n.shape}  ${n.services.join(",")}  ${addrs}  ${health}, load ${n.load}, ${
    size(n.freeDiskBytes)
  } free, ${size(n.rssBytes)} RSS`;
}

export function registerNodeCommands(program: Command): void {
  program.command("nodes")
    .description("the nodes of the cloud: peer id, shape, services, addresses, health")
    .option("--cloud <url>", "the cloud's API (default $TAU_CLOUD or http://127.0.0.1:8080)")
    .option("--json", "print the list as JSON")
    .action(async (o: { cloud?: string; json?: boolean }) => {
      const nodes = await api<NodeView[]>(cloudUrl(o.cloud), "/nodes");
      if (o.json) console.log(JSON.stringify(nodes, null, 2));
      else for (const n of nodes) console.log(formatNode(n));
    });
  program.command("memory")
    .description("the memory of the node at --cloud, by part: the node process, its heap and workers, its helpers")
    .option("--cloud <url>", "the cloud's API (default $TAU_CLOUD or http://127.0.0.1:8080)")
    .option("--json", "print the report as JSON")
    .action(async (o: { cloud?: string; json?: boolean }) => {
      const memory = await api<NodeMemory>(cloudUrl(o.cloud), "/memory");
      if (o.json) console.log(JSON.stringify(memory, null, 2));
      else for (const line of formatMemory(memory)) console.log(line);
    });
}
