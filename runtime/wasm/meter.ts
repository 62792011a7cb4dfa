/**
 * Host side of the metering inserted by prepareModule: the guest calls `tau_meter.tick` every FUEL_PER_TICK
 * metering points; past the deadline it throws, which unwinds the guest's stack (a trap from its point of view).
 * Calls on one thread never overlap (wasm runs synchronously), so one meter per thread is enough.
 */

// The import prepareModule adds. They live here, not in prepare.ts, so that running a function never loads binaryen.
export const METER_MODULE = "tau_meter";
export const METER_TICK = "tick";
/** Metering points (function entries + loop iterations) between two host clock checks. */
export const FUEL_PER_TICK = 4096;

/** Thrown into the guest when its deadline has passed. */
export class DeadlineExceeded extends Error {
  constructor() {
    super("deadline exceeded");
    this.name = "DeadlineExceeded";
  }
}

export class Meter {
  /** performance.now() value after which the running call is aborted. */
  deadline = Infinity;

  /** Bound once so every instance's import object shares the same function. */
  readonly tick = (): void => {
    if (performance.now() > this.deadline) throw new DeadlineExceeded();
  };
}

export const meter = new Meter();
