/**
 * What a deployed function's host calls reach, bound from its deployment record: the databases and storages the
 * deployment declares (resolved by name at each call), globals, the content store, outbound HTTP with the
 * function's allow-list, and the project secrets its config lists. Nothing is ambient: a function gets exactly what
 * its record names.
 */
import type { ContentStore } from "../../runtime/storage/helia.ts";
import { createOutbound } from "../../runtime/net/outbound.ts";
import { HostError, type HostServices, type PubsubOps, type SecretOps } from "../../runtime/wasm/host/services.ts";
import type { StateStore } from "../kvdb/mod.ts";
import type { DeploymentRecord } from "../tns/records.ts";
import type { DeployedModule } from "../substrate/targets.ts";
import { notSetLine, type Secrets } from "../secrets/secrets.ts";
import { bindFunctionData } from "./bindings.ts";

export function hostBinder(deps: {
  store: StateStore;
  content: ContentStore;
  secrets?: Secrets;
  /** The message bus's capability for this function (services/pubsub), when the node has one. */
  pubsub?: (record: DeploymentRecord, fn: DeployedModule) => PubsubOps | undefined;
}) {
  return (record: DeploymentRecord, fn: DeployedModule): HostServices => {
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
      ...(deps.secrets ? { secrets: bindSecrets(deps.secrets, record.project, fn) } : {}),
      pubsub: deps.pubsub?.(record, fn),
    };
  };
}

/** The secrets one function may read: those its config lists, each looked up when it asks (a set takes effect). */
function bindSecrets(secrets: Secrets, project: string, fn: DeployedModule): SecretOps {
  const listed = new Set(fn.secrets ?? []);
  const label = fn.app ? `${fn.app}/${fn.name}` : fn.name;
  return {
    async get(name) {
      if (!listed.has(name)) {
        throw new HostError(
          "unbound",
          `function ${label} does not list secret ${name}: add it to secrets: in the function's config`,
        );
      }
      const value = await secrets.get(project, name);
      if (value === undefined) throw new HostError("not-found", notSetLine(project, name));
      return value;
    },
  };
}
