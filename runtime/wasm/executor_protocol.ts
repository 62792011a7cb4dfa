/** Messages between the serving thread and an executor Worker (structured-clone friendly). */
import type { Outcome } from "./outcome.ts";

export interface WireInput {
  method: string;
  path: string;
  query: string;
  headers: [string, string][];
  body: Uint8Array | null;
  params: Record<string, string>;
  requestId: string;
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
}

export type JobReply = { jobId: number; outcome: Outcome } | { jobId: number; needBytes: true };

/** First message to a worker: the flag the pool raises to stop the running call (see Meter.cancel). */
export interface WorkerInit {
  init: true;
  cancel: SharedArrayBuffer;
}
