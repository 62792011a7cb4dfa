/**
 * Globals: named values a function shares with the whole project, its application, or only itself (GlobalScope).
 * They are kept like database entries, with the same per-value limit, but no size counter: a global has no
 * resource that declares a size, and each name holds one value.
 */
import type { GlobalScope, GlobalsOps } from "../../runtime/wasm/host/services.ts";
import type { StateStore } from "../kvdb/mod.ts";
import { asBytes, checkKey, checkValue } from "./limits.ts";
import { type FunctionData, globalKey } from "./records.ts";

export function globalsOps(store: StateStore, fn: Pick<FunctionData, "project" | "app" | "functionId">): GlobalsOps {
  // A project-level function asking for its application's scope shares with the other project-level functions:
  // its "application" is the project's top level, "".
  const keyOf = (name: string, scope: GlobalScope) =>
    globalKey(
      fn.project,
      scope?.application ? fn.app ?? "" : "",
      scope?.function ? fn.functionId : "",
      checkKey("a global's name", name),
    );
  return {
    async get(name, scope) {
      return asBytes(await store.get(keyOf(name, scope)));
    },
    async put(name, scope, value) {
      const key = keyOf(name, scope);
      await store.set(key, checkValue(`value of global "${name}"`, value));
    },
  };
}
