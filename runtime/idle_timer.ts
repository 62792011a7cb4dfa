/**
 * Retirement of a helper that has had nothing to do for a while. The AssemblyScript compiler with binaryen holds
 * ~275 MB once loaded; a node at rest should not pay that, so the build and config-parse helpers start with the first
 * build that needs them and retire when idle. They are child processes (runtime/helper), not Workers: a retired
 * Worker's thread kept its malloc arenas (`tau dev` sat at ~236 MB after one build against 148 MB before it, and
 * malloc_trim did not give it back), while an exited process gives back everything (`tau dev` idle PSS then 93 MB;
 * `deno task bench memory` measures it now).
 * The price is the first build after start or after a quiet spell: the compiler loads again (~1-1.3 s, binaryen's
 * first rewrite ~0.6 s, the config parser ~0.5-0.9 s with the process start); later pushes are as fast as before.
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

/** How long the build and config-parse helpers stay loaded after their last job (TAU_WORKER_IDLE_MS overrides). */
export function workerIdleMs(): number {
  const env = Deno.env.get("TAU_WORKER_IDLE_MS");
  const ms = env === undefined ? NaN : Number(env);
  return Number.isFinite(ms) && ms >= 0 ? ms : 120_000;
}
