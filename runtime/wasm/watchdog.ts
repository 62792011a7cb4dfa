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
 * The Worker starts when asked (watch(): a node serves its first function) or with the first guest (guestId): it holds
 * ~8 MB, which a node that serves no function need not pay. Once constructed it needs nothing from the serving thread
 * to boot, so a guest that holds the thread from its first call is caught all the same.
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
  private worker?: Worker;
  private readonly init: WatchdogInit;
  private readonly ids = new Map<string, number>();
  private watching!: () => void;
  private closed = false;
  /** Resolves once the worker watches (it starts with watch() or the first guestId, and takes a moment to boot). */
  readonly ready: Promise<void>;

  constructor(opts: WatchdogOptions = {}) {
    this.stallMs = opts.stallMs ?? DEFAULT_STALL_MS;
    this.init = {
      beat: this.beat.buffer as SharedArrayBuffer,
      stallMs: this.stallMs,
      exitAfterMs: opts.exitAfterMs === undefined ? DEFAULT_EXIT_AFTER_MS : opts.exitAfterMs,
      quarantineFile: opts.quarantineFile,
      pollMs: WATCHDOG_POLL_MS,
    };
    this.ready = new Promise((resolve) => this.watching = resolve);
  }

  /** Whether the Worker has been started. */
  get started(): boolean {
    return this.worker !== undefined;
  }

  /** A small id for a module, told to the worker once (a message is queued at once, even if this thread then hangs). */
  guestId(key: string, name: string): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.ids.size + 1;
      this.ids.set(key, id);
      this.watch()?.postMessage({ guest: id, name, key } satisfies WatchdogMessage);
    }
    return id;
  }

  /**
   * Starts the Worker now if it has not started. Constructing a Worker blocks this thread while the worker's runtime
   * boots (~10-50 ms measured), so a node starts it when it deploys a function, not on that function's first request;
   * guestId starts it too, so that no guest ever runs unwatched.
   */
  watch(): Worker | undefined {
    if (this.worker || this.closed) return this.worker;
    const worker = new Worker(new URL("./watchdog_worker.ts", import.meta.url).href, { type: "module" });
    worker.onmessage = () => this.watching();
    worker.postMessage(this.init);
    return this.worker = worker;
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
    this.closed = true;
    this.worker?.terminate();
  }
}
