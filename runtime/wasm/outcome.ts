/** What one execution of a function produced; plain data so it can cross from an executor Worker. */

export interface LogEntry {
  stream: "stderr" | "log" | "trap";
  text: string;
}

/**
 * What started a call other than an HTTP request (tau's events; Taubyte's event types). Plain data: it crosses to
 * executor Workers. Each capability reads the part it needs (Taubyte's pubsub and p2p event calls, the secrets
 * call); every ABI also sees the event as an HTTP-shaped call (eventInput), so a guest written against tau's
 * request calls or WAGI handles events with the calls it already has.
 */
export type FunctionEvent =
  | { kind: "pubsub"; channel: string; data: Uint8Array }
  /** `from`/`to`: peer ids (the caller's and this node's; "local" on a single node). */
  | { kind: "p2p"; protocol: string; command: string; data: Uint8Array; from: string; to: string }
  /** `at`: the tick's scheduled time (ms since the epoch). */
  | { kind: "cron"; schedule: string; at: number }
  /** A smartop guarding `resource` (kind/name) before the call the rest of the input describes. */
  | { kind: "smartop"; resource: string };

export interface CallInput {
  method: string;
  path: string;
  query: string;
  headers: Headers;
  body: Uint8Array | null;
  params: Record<string, string>;
  requestId: string;
  /** Absent for an HTTP request. */
  event?: FunctionEvent;
  /**
   * WAGI: environment variables besides the CGI ones: the project secrets the function's config lists (filled in by
   * the runtime just before the call, never logged).
   */
  env?: Record<string, string>;
}

/** busy: the project's executor queue is full or the call waited its whole timeout; cancelled: the client left. */
export type ErrorReason = "trap" | "timeout" | "bad-output" | "misconfigured" | "busy" | "cancelled";

export type Outcome =
  | {
    kind: "response";
    status: number;
    headers: [string, string][];
    body: Uint8Array | null;
    /** The body as text instead (body is null then): short ASCII written by an SDK guest, sent as a string. */
    text?: string;
    logs: LogEntry[];
  }
  | { kind: "error"; reason: ErrorReason; message: string; logs: LogEntry[] }
  /**
   * The inline budget ran out: the attempt was dropped (with its logs) and must be re-run on an executor. `stalled`:
   * the time went in one unmetered stretch (see Meter.stalled), not in the guest's metered work.
   */
  | {
    kind: "budget";
    stalled: boolean;
    /** The inline attempt stopped before this host call with an effect (not for lack of time). */
    effect?: string;
  };

/** Response bodies above this are refused: a guest must not be able to make the host buffer without bound. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

export class OutputTooLarge extends Error {
  constructor() {
    super(`response larger than ${MAX_RESPONSE_BYTES} bytes`);
  }
}
