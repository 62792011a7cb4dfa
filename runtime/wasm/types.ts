/** The runtime's public types: the gateway and the build code against exactly these. */
import type { HostServices, SelfInfo } from "./host/services.ts";
import type { ErrorReason } from "./outcome.ts";

export interface FunctionLimits {
  timeoutMs: number;
  memoryBytes: number;
}

export interface FunctionTarget {
  /** Cache key: the CID of the PREPARED module (one per function build). */
  key: string;
  /** Function name, for logs and error bodies. */
  name: string;
  /** execution.call; if the module exports it => SDK mode, else `_start` => WAGI mode. */
  call?: string;
  limits: FunctionLimits;
  /** The project the function belongs to: executors are shared fairly between projects (executor_pool.ts). */
  project?: string;
  /** Who the function is, for Taubyte's `self` calls. */
  self?: SelfInfo;
  /** What its deployment binds (databases, storages, network...), for modules that call host services. */
  host?: HostServices;
  /** The project secrets its config lists: a WAGI guest gets each as an environment variable. */
  secrets?: string[];
}

/** Fetches prepared module bytes on a cache miss. */
export type LoadModule = (key: string) => Promise<Uint8Array>;

export interface FunctionLogLine {
  fn: string;
  /** The function's project (absent for the runtime's own markers). */
  project?: string;
  requestId: string;
  stream: "stderr" | "log" | "trap";
  text: string;
}

/** What an event's call answered: the guest's status, headers and body, or why it did not run to an answer. */
export type EventResult =
  | { ok: true; status: number; headers: [string, string][]; body: Uint8Array }
  /** denied: a smartop refused the call before it ran (services/smartops). */
  | { ok: false; reason: ErrorReason | "denied"; message: string };
