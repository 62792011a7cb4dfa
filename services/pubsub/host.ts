/**
 * A function's pubsub capability (runtime/wasm/host/services.ts PubsubOps), bound per deployed function: it may
 * publish only on channels of its own project, resolved from its application's resources first, then the project's.
 * The channel is resolved against the record that deployed the function, so a message never leaks into another
 * deployment's channels.
 */
import type { PubsubOps } from "../../runtime/wasm/host/services.ts";
import { HostError } from "../../runtime/wasm/host/services.ts";
import { type DeploymentRecord, fqdnsOf, type FunctionDeployment } from "../tns/records.ts";

/** Who publishes: a function (its routes name the domain its WebSocket URLs use), or a smartop (no routes). */
export type PubsubCaller = Pick<FunctionDeployment, "app"> & { routes?: FunctionDeployment["routes"] };
import type { PubsubBus } from "./bus.ts";
import { resolveChannel, webSocketPath } from "./channels.ts";

/**
 * `port`: the node's WebSocket port (ws_listener.ts), once it listens. The URL names the function's own domain (its
 * first route's), else the project's first: browsers reach the node by it, as they reach its HTTP routes.
 */
export function pubsubOps(
  bus: PubsubBus,
  record: DeploymentRecord,
  fn: PubsubCaller,
  port: () => number | undefined,
): PubsubOps {
  return {
    async publish(channel, data) {
      await bus.publish(resolveChannel(record, fn.app, channel), data);
    },
    webSocketURL(channel) {
      const ref = resolveChannel(record, fn.app, channel);
      if (!ref.binding.websocket) {
        throw new HostError(
          "unbound",
          `channel ${channel} has no WebSocket bridge: set bridges: {websocket: {enable: true}} in messaging/` +
            `${ref.binding.name}.yaml`,
        );
      }
      const fqdn = fn.routes?.[0]?.fqdn ?? fqdnsOf(record)[0];
      if (!fqdn) {
        throw new HostError("unbound", `project ${record.project} serves no domain to open channel ${channel} on`);
      }
      const p = port();
      if (p === undefined) throw new HostError("failed", "this node serves no WebSockets");
      return Promise.resolve(`ws://${fqdn}:${p}/${webSocketPath(ref)}`);
    },
    subscribe(channel) {
      resolveChannel(record, fn.app, channel);
      return Promise.resolve();
    },
  };
}
