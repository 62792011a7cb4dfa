/**
 * What the runtime needs to call a deployed function (its module, limits, identity and host bindings), made once
 * per deployed function: records never change, so the target of a FunctionDeployment object is fixed. The gateway
 * (HTTP) and the event triggers (pubsub, p2p, cron, smartops) share one table.
 */
import type { FunctionTarget } from "../../runtime/wasm/mod.ts";
import type { HostServices } from "../../runtime/wasm/host/services.ts";
import type { DeploymentRecord, FunctionDeployment } from "../tns/records.ts";

/** What a target is made of: a deployed function, or a smartop (which has no routes or trigger). */
export type DeployedModule = Pick<
  FunctionDeployment,
  "cid" | "name" | "app" | "id" | "call" | "timeoutMs" | "memoryBytes" | "outbound" | "secrets"
>;

export type BindHost = (record: DeploymentRecord, fn: DeployedModule) => HostServices;

export class FunctionTargets {
  readonly #targets = new WeakMap<DeployedModule, FunctionTarget>();
  constructor(private readonly bindHost?: BindHost) {}

  of(record: DeploymentRecord, fn: DeployedModule): FunctionTarget {
    let target = this.#targets.get(fn);
    if (!target) {
      target = {
        key: fn.cid,
        name: fn.app ? `${fn.app}/${fn.name}` : fn.name,
        call: fn.call,
        limits: { timeoutMs: fn.timeoutMs, memoryBytes: fn.memoryBytes },
        project: record.project,
        self: {
          project: record.project,
          application: fn.app ?? "",
          id: fn.id,
          branch: record.branch,
          commit: record.commit,
        },
        // Bound lazily by the services: a function that never calls a host service costs nothing here.
        host: this.bindHost?.(record, fn),
        ...(fn.secrets?.length ? { secrets: fn.secrets } : {}),
      };
      this.#targets.set(fn, target);
    }
    return target;
  }
}
