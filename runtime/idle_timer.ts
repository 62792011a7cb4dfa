/**
 * Retirement of a helper Worker that has had nothing to do for a while. The AssemblyScript compiler with binaryen
 * holds ~275 MB once loaded (PSS of `tau dev` 25 s after start: 438 MB when it warmed both workers at start, 148 MB
 * now); a node at rest should not pay that, so the build and config-parse workers start with the first build that
 * needs them and retire when idle. After a build and a retirement `tau dev` measured ~236 MB, not 148: the worker
 * thread's malloc arenas keep part of what it used (malloc_trim did not give it back). The price is the first build
 * after start or after a quiet spell: push -> live of an AssemblyScript function measured 2.8-4.2 s against 1.5-2.4 s
 * warmed (compiler load ~1-1.3 s, binaryen's first rewrite ~0.6 s, the config parser ~0.5 s); later pushes are equal.
 */
export class IdleTimer {
  #timer?: ReturnType<typeof setTimeout>;

  constructor(private readonly idleMs: number, private readonly onIdle: () => void) {}

  /** Work started: nothing is retired while it runs. */
  busy(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Nothing is pending any more: retire after `idleMs` unless work starts again first. */
  idle(): void {
    this.busy();
    if (!Number.isFinite(this.idleMs)) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.onIdle();
    }, this.idleMs);
    Deno.unrefTimer(timer as unknown as number); // never what keeps a process alive
    this.#timer = timer;
  }

  stop(): void {
    this.busy();
  }
}

/** How long the build and config-parse workers stay loaded after their last job (TAU_WORKER_IDLE_MS overrides). */
export function workerIdleMs(): number {
  const env = Deno.env.get("TAU_WORKER_IDLE_MS");
  const ms = env === undefined ? NaN : Number(env);
  return Number.isFinite(ms) && ms >= 0 ? ms : 120_000;
}
