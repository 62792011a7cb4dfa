/**
 * The serving thread's watchdog. Synchronous wasm on Deno's main thread cannot be interrupted from outside: no API
 * lets another thread stop it (Worker.terminate() exists only for Workers, and Deno.exit() in a Worker ends only
 * that Worker). What the metering guarantees (instrument.ts) is that a prepared guest reaches a clock check soon;
 * this watchdog is the net under that guarantee, for whatever it missed.
 *
 * The serving thread bumps a counter in shared memory when it enters a guest and again when it leaves (two atomic
 * adds per call). A Worker polls it: if one guest call has held the thread for `stallMs` it writes a line naming the
 * function; if for `exitAfterMs`, it records the module in the quarantine file and kills the process (SIGKILL: a
 * signal handler would need the stuck thread), which is the only way left to take the thread back. After a restart
 * (tau serve under a supervisor) a quarantined module runs only on executor Workers, which can be terminated.
 * The worker counts its own polls rather than reading a clock, so a suspended machine is not a stall.
 */

export interface WatchdogOptions {
  /** Report a guest call that has held the serving thread this long. */
  stallMs?: number;
  /** Kill the process once one guest call has held the serving thread this long; null: never. */
  exitAfterMs?: number | null;
  /** Where quarantined module keys are kept, one per line (read at start by the runtime). */
  quarantineFile?: string;
}

export const DEFAULT_STALL_MS = 1000;
export const DEFAULT_EXIT_AFTER_MS = 30_000;
export const WATCHDOG_POLL_MS = 50;

/** Layout of the shared beat: [0] entries+exits (odd while a guest runs), [1] the running guest's id, [2] stalls. */
export const BEAT_SEQ = 0;
export const BEAT_GUEST = 1;
export const BEAT_STALLS = 2;

export interface WatchdogInit {
  beat: SharedArrayBuffer;
  stallMs: number;
  exitAfterMs: number | null;
  quarantineFile?: string;
  pollMs: number;
}

export type WatchdogMessage = { guest: number; name: string; key: string };

export class ServingWatchdog {
  readonly stallMs: number;
  private readonly beat = new Int32Array(new SharedArrayBuffer(12));
  private readonly worker: Worker;
  private readonly ids = new Map<string, number>();
  /** Resolves once the worker watches (it takes a moment to start). */
  readonly ready: Promise<void>;

  constructor(opts: WatchdogOptions = {}) {
    this.stallMs = opts.stallMs ?? DEFAULT_STALL_MS;
    this.worker = new Worker(new URL("./watchdog_worker.ts", import.meta.url).href, { type: "module" });
    const init: WatchdogInit = {
      beat: this.beat.buffer as SharedArrayBuffer,
      stallMs: this.stallMs,
      exitAfterMs: opts.exitAfterMs === undefined ? DEFAULT_EXIT_AFTER_MS : opts.exitAfterMs,
      quarantineFile: opts.quarantineFile,
      pollMs: WATCHDOG_POLL_MS,
    };
    this.ready = new Promise((resolve) => this.worker.onmessage = () => resolve());
    this.worker.postMessage(init);
  }

  /** A small id for a module, told to the worker once (a message is queued at once, even if this thread then hangs). */
  guestId(key: string, name: string): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.ids.size + 1;
      this.ids.set(key, id);
      this.worker.postMessage({ guest: id, name, key } satisfies WatchdogMessage);
    }
    return id;
  }

  enter(guest: number): void {
    this.beat[BEAT_GUEST] = guest;
    Atomics.add(this.beat, BEAT_SEQ, 1);
  }

  leave(): void {
    Atomics.add(this.beat, BEAT_SEQ, 1);
  }

  /** How many stalls the worker has reported. */
  get stalls(): number {
    return Atomics.load(this.beat, BEAT_STALLS);
  }

  close(): void {
    this.worker.terminate();
  }
}
