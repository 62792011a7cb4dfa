/** Messages between the serving thread and an executor Worker (structured-clone friendly). */
import type { HostCall, HostReply } from "./host/bridge.ts";
import type { SelfInfo } from "./host/services.ts";
import type { Outcome } from "./outcome.ts";

export interface WireInput {
  method: string;
  path: string;
  query: string;
  headers: [string, string][];
  body: Uint8Array | null;
  params: Record<string, string>;
  requestId: string;
  env?: Record<string, string>;
}

export interface RunJob {
  jobId: number;
  key: string;
  /** Sent the first time a worker sees a module (and again if it evicted it); workers cache compiled modules. */
  bytes?: Uint8Array;
  name: string;
  call?: string;
  timeoutMs: number;
  input: WireInput;
  /** Who the function is (Taubyte's `self` calls). */
  self?: SelfInfo;
}

/** From a worker: the job's result, a request for module bytes, or a host operation to run (host/bridge.ts). */
export type JobReply = { jobId: number; outcome: Outcome } | { jobId: number; needBytes: true } | HostCall;

/** To a worker: a job, a host operation's result, or (first) the cancel flag. */
export type ToWorker = RunJob | HostReply | WorkerInit;

/**
 * First message to a worker: the flag the pool raises to stop the running call (see Meter.cancel): CANCEL_STOP when
 * its client went away, CANCEL_PREEMPT to make room for another project (ignored once the call had an effect).
 */
export interface WorkerInit {
  init: true;
  cancel: SharedArrayBuffer;
}

/** A worker's answer to its init: it has booted, and a job's timeout may start counting. */
export interface WorkerBooted {
  booted: true;
}

export const CANCEL_STOP = 1;
export const CANCEL_PREEMPT = 2;
