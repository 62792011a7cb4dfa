/**
 * `smartops/<name>.yaml`: code that guards resources (Taubyte's smartops). A resource is guarded by the smartops its
 * tags name (`smartops:<name>`). Its code is code repo smartops/<name>/ (or the library `source` names); the build
 * compiles it like a function and services/smartops runs it before every call of the resources it guards.
 */
import type { KindSpec } from "../kinds.ts";
import type { SmartopsResource } from "../types.ts";
import { codeSource, common, executionGroup } from "./common.ts";

export const smartopsKind: KindSpec = {
  kind: "smartops",
  folder: "smartops",
  doc:
    "Code that runs before the resources whose tags name it (smartops:<name>): a 2xx answer lets the call go ahead, anything else (or a trap, a timeout) denies it with 403.",
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
