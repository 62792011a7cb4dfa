/**
 * Everything that runs functions besides the gateway's HTTP routes, assembled once per node: project secrets, the
 * functions' host bindings (data, secrets, pubsub, p2p), smartops, the event index, p2p commands, the pubsub bus
 * with its WebSocket port, and cron. Kept out of node.ts, which wires the services together; this module wires the
 * parts of one concern, whose mutual needs (the bus and the commands need the event index, which needs the targets,
 * which bind the bus and the commands) are closed here once.
 */
import type { Hono } from "hono";
import type { FunctionLogLine, FunctionRuntime } from "../../runtime/wasm/mod.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import type { Auth } from "../auth/projects.ts";
import type { Cluster } from "../cluster/cluster.ts";
import { type Commands, lateHostOps, startCommands } from "../commands/commands.ts";
import { commandRoutes } from "../commands/routes.ts";
import { startCron } from "../cron/cron.ts";
import { hostBinder } from "../data/host.ts";
import type { StateStore } from "../kvdb/mod.ts";
import { LogBus } from "../logs/bus.ts";
import { logRoutes } from "../logs/routes.ts";
import { type Pubsub, startPubsub } from "../pubsub/mod.ts";
import { Secrets, secretsKey } from "../secrets/secrets.ts";
import { secretsRoutes } from "../secrets/routes.ts";
import { SmartopGuard } from "../smartops/guard.ts";
import { FunctionTargets } from "../substrate/targets.ts";
import type { Tns } from "../tns/tns.ts";
import type { UpgradeHandler } from "../gateway/gateway.ts";
import { EventFunctions } from "./functions.ts";

/** Function log lines: the terminal of `tau dev` and the followers of `tau logs --follow` (services/logs). */
export function functionLogs(cluster: Cluster | undefined, echo: boolean) {
  const bus = new LogBus(cluster ? `${cluster.config.ip}/${cluster.config.shape}` : "local");
  if (cluster) bus.attach(cluster.p2p.libp2p, cluster.config.cloud);
  const line = (l: FunctionLogLine) => {
    if (echo) console.error(`[fn ${l.fn} ${l.requestId}] ${l.stream}: ${l.text}`);
    if (l.project) bus.emit({ project: l.project, fn: l.fn, requestId: l.requestId, stream: l.stream, text: l.text });
  };
  return { bus, line };
}

export interface EventServices {
  targets: FunctionTargets;
  smartops: SmartopGuard;
  events: EventFunctions;
  pubsub: Pubsub;
  commands: Commands;
  /** The gateway's WebSocket upgrades (the pubsub bridge; containers' on the same port). */
  upgrades: UpgradeHandler;
  /** Their API routes (logs, secrets, commands), mounted under /api. */
  routes(api: Hono, auth: Auth): void;
  /** Opens the node's WebSocket port next to its HTTP port. */
  listen(
    hostname: string,
    httpPort: number,
    upgrade: (req: Request, host: string, path: string, clientIp: string) => Promise<Response>,
  ): void;
  /** Stops the ticks first (before the listener closes), then the bus. */
  stopTicks(): void;
  close(): Promise<void>;
}

export async function startEventServices(deps: {
  runtime: FunctionRuntime;
  tns: Tns;
  state: StateStore;
  userData: StateStore;
  content: ContentStore;
  dataDir: string;
  swarmKey?: Uint8Array;
  cluster?: Cluster;
  /** False on a node whose shape runs no substrate. */
  runsFunctions: boolean;
  logs: ReturnType<typeof functionLogs>;
  log: (line: string) => void;
}): Promise<EventServices> {
  const { runtime, cluster, log, logs } = deps;
  // Project secrets: encrypted in the replicated state; the key from the swarm key (every node of the cloud has it).
  const secrets = new Secrets(deps.state, await secretsKey({ dataDir: deps.dataDir, swarmKey: deps.swarmKey }), {
    onFirstSet: cluster && !deps.swarmKey
      ? () => log("secrets: this cloud has no swarm key: a secret set through this node is readable only on this node")
      : undefined,
  });
  // Bound late (see the header): assigned once both exist.
  // deno-lint-ignore prefer-const
  let pubsub: Pubsub | undefined;
  // deno-lint-ignore prefer-const
  let commands: Commands | undefined;
  const bindData = hostBinder({
    store: deps.userData,
    content: deps.content,
    secrets,
    pubsub: (record, fn) => pubsub?.opsFor(record, fn),
  });
  const targets = new FunctionTargets((record, fn) => ({
    ...bindData(record, fn),
    p2p: lateHostOps(() => commands, record.project),
  }));
  const smartops = new SmartopGuard({
    runtime,
    targets,
    log: (project, op, id, text) => logs.line({ fn: op, project, requestId: id, stream: "log", text }),
  });
  const events = new EventFunctions({
    tns: deps.tns,
    runtime,
    targets,
    runsFunctions: deps.runsFunctions,
    smartops,
    logs: logs.bus,
  });
  commands = await startCommands({ events, cluster, log });
  pubsub = await startPubsub({ events, cluster, log });
  // Cron ticks, each run once in the cloud: by the tick's rendezvous choice among the live substrate nodes.
  const cron = startCron({
    events,
    state: deps.state,
    self: cluster?.p2p.peerId ?? "local",
    runners: () => cluster ? cluster.directory.peersFor("substrate").map((e) => e.peer) : ["local"],
    log,
    functionLog: (l) => logs.line({ ...l, stream: "log" }),
    // Every live node heartbeats within this (services/p2p/directory.ts): by then this node knows all runners.
    settleMs: cluster ? 6_000 : 0,
  });
  const bus = pubsub;
  const answering = commands;
  return {
    targets,
    smartops,
    events,
    pubsub: bus,
    commands: answering,
    upgrades: {
      wants: (req, path) => bus.bridge.wants(req, path),
      handle: (req, record, path, id) => bus.bridge.handle(req, record, path, id),
      refusal: () =>
        `WebSockets are served on port ${bus.port()} of this node, not on its HTTP port: open the URL ` +
        "getWebSocketURL answers (or that port, for a container)",
    },
    routes(api, auth) {
      api.route("/", logRoutes(logs.bus, auth));
      api.route("/", secretsRoutes(secrets, auth));
      api.route("/", commandRoutes(answering, auth));
    },
    listen(hostname, httpPort, upgrade) {
      bus.listen({ hostname, httpPort }, upgrade);
    },
    stopTicks: () => cron.close(),
    async close() {
      cron.close();
      await bus.close();
      logs.bus.stop();
    },
  };
}
