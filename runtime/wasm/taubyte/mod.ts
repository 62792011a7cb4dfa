/**
 * The `taubyte/sdk` host module: one table built from one module per capability (the HTTP event, self and crypto,
 * databases, storages and content, globals, the HTTP client, pubsub, p2p commands, and tau's own secrets call). Pure
 * calls are plain imports. Calls that reach host services are JSPI-suspending imports: the guest waits while the
 * node's stores answer, the thread runs other calls meanwhile. Reads may run inline on the serving thread; a call
 * with an effect (a write, a request out) stops an
 * inline attempt before it happens (EffectNeedsExecutor) and the call runs again on an executor, so no effect ever
 * runs twice and no effect holds the serving thread.
 */
import type { GuestMemory } from "../abi_sdk.ts";
import { EffectNeedsExecutor, meter } from "../meter.ts";
import { type AsyncCalls, GuestAccess, type SyncCalls, type TaubyteCall, unsigned } from "./abi.ts";
import { databaseCalls } from "./database.ts";
import { globalsCalls } from "./globals.ts";
import { httpClientCalls } from "./http_client.ts";
import { httpEventCalls } from "./http_event.ts";
import { p2pCalls } from "./p2p.ts";
import { pubsubCalls } from "./pubsub.ts";
import { selfCalls } from "./self.ts";
import { secretsCalls } from "./secrets.ts";
import { storageCalls } from "./storage.ts";

export { Errno, TAUBYTE_MODULE, TaubyteEvent } from "./abi.ts";
export type { TaubyteCall } from "./abi.ts";

interface CapabilityCalls {
  sync?: SyncCalls;
  async?: AsyncCalls;
  /** Async calls with effects outside the call. */
  effects?: string[];
}

function capabilities(g: GuestAccess, current: () => TaubyteCall): CapabilityCalls[] {
  return [
    { sync: httpEventCalls(g, current) },
    { sync: selfCalls(g, current) },
    databaseCalls(g, current),
    storageCalls(g, current),
    globalsCalls(g, current),
    httpClientCalls(g, current),
    secretsCalls(g, current),
    p2pCalls(g, current),
    pubsubCalls(g, current),
  ];
}

// deno-lint-ignore no-explicit-any
const Suspending = (WebAssembly as any).Suspending as new (f: (...a: never[]) => Promise<unknown>) => object;

/**
 * The imports for one instance. `suspend`: wrap host-service calls for JSPI (the instance's exports are entered
 * through WebAssembly.promising); without it they are left out (a module without host calls needs none).
 */
export function taubyteImports(
  mem: GuestMemory,
  current: () => TaubyteCall,
  suspend: boolean,
): Record<string, WebAssembly.ImportValue> {
  const out: Record<string, WebAssembly.ImportValue> = {};
  for (const cap of capabilities(new GuestAccess(mem), current)) {
    for (const [name, f] of Object.entries(cap.sync ?? {})) out[name] = unsigned(name, f);
    if (!suspend) continue;
    const effects = new Set(cap.effects ?? []);
    for (const [name, f] of Object.entries(cap.async ?? {})) {
      const call = unsigned(name, f);
      const guarded = effects.has(name)
        ? (...a: number[]) => {
          if (meter.inline) throw new EffectNeedsExecutor(name);
          meter.committed = true; // from here on this call is never preempted or re-run (executor_pool.ts)
          return (call as (...a: number[]) => Promise<number>)(...a);
        }
        : call;
      out[name] = new Suspending(guarded) as WebAssembly.ImportValue;
    }
  }
  return out;
}

const names = (() => {
  const all = capabilities(new GuestAccess(undefined as unknown as GuestMemory), () => ({}) as never);
  return {
    sync: new Set(all.flatMap((c) => Object.keys(c.sync ?? {}))),
    async: new Set(all.flatMap((c) => Object.keys(c.async ?? {}))),
    effects: new Set(all.flatMap((c) => c.effects ?? [])),
  };
})();

/** Every `taubyte/sdk` call tau provides; a module importing any other is refused at build, naming it. */
export const TAUBYTE_CALLS: ReadonlySet<string> = new Set([...names.sync, ...names.async]);
/** The calls that reach host services (they suspend: the module's exports are entered through JSPI). */
export const TAUBYTE_HOST_CALLS: ReadonlySet<string> = names.async;
/** Host calls with effects: an inline attempt stops before one, the call runs on an executor. */
export const TAUBYTE_EFFECT_CALLS: ReadonlySet<string> = names.effects;
