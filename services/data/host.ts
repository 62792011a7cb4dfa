/**
 * What a deployed function's host calls reach, bound from its deployment record: the databases and storages the
 * deployment declares (resolved by name at each call), globals, the content store, and outbound HTTP with the
 * function's allow-list. Nothing is ambient: a function gets exactly what its record names.
 */
import type { ContentStore } from "../../runtime/storage/helia.ts";
import { createOutbound } from "../../runtime/net/outbound.ts";
import type { HostServices, PubsubOps } from "../../runtime/wasm/host/services.ts";
import type { StateStore } from "../kvdb/mod.ts";
import type { DeploymentRecord, FunctionDeployment } from "../tns/records.ts";
import { bindFunctionData } from "./bindings.ts";

export function hostBinder(deps: {
  store: StateStore;
  content: ContentStore;
  /** The message bus's capability for this function (services/pubsub), when the node has one. */
  pubsub?: (record: DeploymentRecord, fn: FunctionDeployment) => PubsubOps | undefined;
}) {
  return (record: DeploymentRecord, fn: FunctionDeployment): HostServices => {
    const data = bindFunctionData(deps, {
      project: record.project,
      app: fn.app,
      functionId: fn.id,
      databases: record.databases ?? [],
      storages: record.storages ?? [],
    });
    // The allow-list was checked at build (the schema parses each entry), so this does not throw for a new record.
    // Each request is bounded by the function's timeout: the guest stops waiting then, so must the node.
    return {
      ...data,
      http: createOutbound({ allow: fn.outbound ?? [], timeoutMs: fn.timeoutMs }),
      pubsub: deps.pubsub?.(record, fn),
    };
  };
}
