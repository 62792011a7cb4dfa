/**
 * The node's pubsub messaging (bus.ts), its WebSocket bridge (websocket.ts) and, on a cloud, its transport between
 * nodes (transport.ts, loaded only there: `tau dev` runs without libp2p).
 */
import type { Cluster } from "../cluster/cluster.ts";
import type { EventFunctions } from "../events/functions.ts";
import type { DeploymentRecord } from "../tns/records.ts";
import type { PubsubOps } from "../../runtime/wasm/host/services.ts";
import { PubsubBus } from "./bus.ts";
import { type PubsubCaller, pubsubOps } from "./host.ts";
import { WebSocketBridge } from "./websocket.ts";
import { listenWebSockets, type WsListener } from "./ws_listener.ts";

export { PubsubBus } from "./bus.ts";
export { isWebSocketUpgrade, WebSocketBridge } from "./websocket.ts";

export interface Pubsub {
  bus: PubsubBus;
  bridge: WebSocketBridge;
  /** The capability a deployed function gets (services/data/host.ts binds it). */
  opsFor(record: DeploymentRecord, fn: PubsubCaller): PubsubOps;
  /** Opens the WebSocket port next to the HTTP port; `upgrade` finds the host's project (the gateway). */
  listen(
    opts: { hostname: string; httpPort: number },
    upgrade: (req: Request, host: string, path: string, clientIp: string) => Promise<Response>,
  ): number;
  /** The WebSocket port, once listening. */
  port(): number | undefined;
  close(): Promise<void>;
}

export async function startPubsub(deps: {
  events: EventFunctions;
  cluster?: Cluster;
  log: (line: string) => void;
}): Promise<Pubsub> {
  const bus = new PubsubBus({ events: deps.events, log: deps.log });
  const bridge = new WebSocketBridge(bus, deps.log);
  if (deps.cluster) {
    const { startTransport } = await import(
      new URL("./transport.ts", import.meta.url).href
    ) as typeof import("./transport.ts");
    await bus.attach(
      await startTransport(deps.cluster, bus, { runsFunctions: deps.events.runsFunctions, log: deps.log }),
    );
  }
  let listener: WsListener | undefined;
  return {
    bus,
    bridge,
    opsFor: (record, fn) => pubsubOps(bus, record, fn, () => listener?.port),
    listen(opts, upgrade) {
      listener = listenWebSockets({ ...opts, log: deps.log }, upgrade);
      return listener.port;
    },
    port: () => listener?.port,
    async close() {
      bridge.close(); // its sockets first: the listener's shutdown waits for open connections
      await listener?.shutdown();
      await bus.close();
    },
  };
}
