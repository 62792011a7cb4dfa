/**
 * One function's data services, bound from what its deployment declares (workerd's bindings: nothing ambient). A
 * function sees the databases and storages of its own application and of the project, never another
 * application's; a name it opens is found among them here, once, and every call after that is a cache hit.
 *
 * How a node calls it (per function of a deployment, when it builds the function's HostServices):
 *   const data = bindFunctionData({ store: userData, content }, {
 *     project: record.project, app: fn.app, functionId: fn.id,
 *     databases: databaseBindingsOf(config), storages: storageBindingsOf(config),
 *   });
 *   services = { ...data, http };
 * `store` is the user-data store (store.ts: openUserDataStore), `content` the node's ContentStore.
 */
import { regexProblem } from "../../runtime/schema/checks.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import {
  type ContentOps,
  type DatabaseOps,
  type GlobalsOps,
  HostError,
  type StorageOps,
} from "../../runtime/wasm/host/services.ts";
import type { StateStore } from "../kvdb/mod.ts";
import { contentOps } from "./content.ts";
import { databaseOps } from "./database.ts";
import { globalsOps } from "./globals.ts";
import { checkName, guarded } from "./limits.ts";
import type { FunctionData, Place } from "./records.ts";
import { storageOps } from "./storage.ts";

export interface DataDeps {
  /** The user-data store (store.ts). */
  store: StateStore;
  content: ContentStore;
  /** Wall clock in ms (streaming storages' expiry); tests inject one. */
  now?: () => number;
}

export interface FunctionDataServices {
  database: DatabaseOps;
  storage: StorageOps;
  globals: GlobalsOps;
  content: ContentOps;
}

export function bindFunctionData(deps: DataDeps, fn: FunctionData): FunctionDataServices {
  const now = deps.now ?? Date.now;
  return {
    database: guarded(databaseOps(deps.store, resolver("database", fn.databases, fn))),
    storage: guarded(
      storageOps({ store: deps.store, content: deps.content, now }, resolver("storage", fn.storages, fn)),
    ),
    globals: guarded(globalsOps(deps.store, fn)),
    content: guarded(contentOps(deps.content, deps.store, fn)),
  };
}

/** A matched resource and where the name opened through it lives. */
export interface Resolved<B> {
  binding: B;
  place: Place;
}

interface Matchable {
  name: string;
  app?: string;
  match: string;
  regex: boolean;
}

/** Names resolved per bound function; a function opening ever new names (a regex resource) stays bounded. */
const CACHE_NAMES = 256;

/**
 * Finds the resource serving a name: the function's application first, then the project (so an application can
 * shadow a project-wide resource); within each, exact matches before regular expressions, then config order.
 */
export function resolver<B extends Matchable>(
  kind: "database" | "storage",
  bindings: B[],
  fn: { project: string; app?: string },
): (name: string) => Resolved<B> {
  const own = fn.app ? bindings.filter((b) => b.app === fn.app) : [];
  const project = bindings.filter((b) => !b.app);
  const byPrecedence = (tier: B[]) => [...tier.filter((b) => !b.regex), ...tier.filter((b) => b.regex)];
  const candidates = [...byPrecedence(own), ...byPrecedence(project)].map((binding) => ({
    binding,
    test: matcher(binding),
  }));
  const cache = new Map<string, Resolved<B>>();
  return (name: string) => {
    checkName(kind, name);
    const hit = cache.get(name);
    if (hit) return hit;
    const found = candidates.find((c) => c.test(name));
    if (!found) {
      const where = `project ${fn.project}${fn.app ? ` (app ${fn.app})` : ""}`;
      throw new HostError("unbound", `${kind} "${name}" matches no ${kind} resource of ${where}`);
    }
    const resolved = { binding: found.binding, place: { project: fn.project, scope: found.binding.app ?? "", name } };
    if (cache.size >= CACHE_NAMES) cache.delete(cache.keys().next().value!);
    cache.set(name, resolved);
    return resolved;
  };
}

/**
 * Compiled once per binding. A regex that does not compile, or could backtrack exponentially, was refused by
 * `tau validate` (regexProblem); one in an older record matches nothing here rather than stall the serving thread.
 */
function matcher(b: Matchable): (name: string) => boolean {
  if (!b.regex) return (name) => name === b.match;
  if (regexProblem(b.match)) return () => false;
  try {
    const re = new RegExp(`^(?:${b.match})$`);
    return (name) => re.test(name);
  } catch {
    return () => false;
  }
}
