/**
 * `smartops/<name>.yaml`: code that guards resources (Taubyte's smartops). A resource is guarded by the smartops its
 * tags name (`smartops:<name>`). tau parses and validates them and builds nothing yet; running them before the
 * resources they guard comes with the events work.
 */
import type { KindSpec } from "../kinds.ts";
import type { SmartopsResource } from "../types.ts";
import { codeSource, common, executionGroup } from "./common.ts";

export const smartopsKind: KindSpec = {
  kind: "smartops",
  folder: "smartops",
  doc: "Code that guards the resources whose tags name it (smartops:<name>).",
  shape: { ...common, source: codeSource, execution: executionGroup("check") },
  build: (v, base): SmartopsResource => ({
    kind: "smartops",
    ...base,
    description: v.description,
    tags: v.tags,
    source: v.source,
    execution: { timeoutMs: v.execution.timeout, memoryBytes: v.execution.memory, call: v.execution.call },
  }),
};
