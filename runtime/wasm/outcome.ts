/** What one execution of a function produced; plain data so it can cross from an executor Worker. */

export interface LogEntry {
  stream: "stderr" | "log" | "trap";
  text: string;
}

export interface CallInput {
  method: string;
  path: string;
  query: string;
  headers: Headers;
  body: Uint8Array | null;
  params: Record<string, string>;
  requestId: string;
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
