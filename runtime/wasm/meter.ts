/**
 * Host side of the metering inserted by prepareModule (instrument.ts): the guest spends fuel as it runs and calls
 * `tau_meter.tick` whenever FUEL_PER_TICK units are spent; there the host compares the clock with the call's
 * deadline and throws, which unwinds the guest's stack (a trap from its point of view). Host calls spend fuel here,
 * by the bytes they touch (charge()). Calls on one thread never overlap (wasm runs synchronously), so one meter per
 * thread is enough.
 */

import type { ResetPlan } from "./instance_reset.ts";

// The import and the proof section prepareModule adds. They live here, not in prepare.ts, so that running a
// function never loads binaryen.
export const METER_MODULE = "tau_meter";
export const METER_TICK = "tick";
/** Custom section naming the metering version a module was prepared with, and whether it may run inline. */
export const METERING_SECTION = "tau.metering";
/**
 * Bumped whenever the metering changes what it guarantees. Modules prepared by an older version still run, but only
 * on executor Workers (which can be terminated), until their next build. 1: loop heads and function entries
 * (binaryen log-execution). 2: fuel by code size, after calls, bulk memory in chunks, refused features.
 */
export const METERING_VERSION = 2;

/**
 * Fuel units between two clock checks. A unit is about one wasm instruction (a memory access counts MEMORY_COST),
 * so a check comes every ~10-50 us of ordinary code; a check costs ~0.1 us.
 */
export const FUEL_PER_TICK = 32768;
/** Loads and stores cost more: the first touch of a page is a page fault (~2.3 us measured on this VM). */
export const MEMORY_COST = 4;
/** memory.fill / memory.copy run in chunks of this many bytes, and spend CHUNK_BYTES >> BYTE_SHIFT fuel each. */
export const CHUNK_BYTES = 65536;
/** Fuel per byte touched by a bulk memory operation: 1 unit per 16 bytes (a 64 KiB chunk is 4096 units). */
export const BYTE_SHIFT = 4;
/** Host calls check the clock after every this many bytes they copy in or out of the guest. */
export const HOST_BYTES_PER_CHECK = 256 * 1024;

/** What the proof section says. */
export interface MeteringProof {
  version: number;
  /** false: the module is metered, but its unmetered costs (compile, instantiate, memory) are too big for inline. */
  inline: boolean;
  why?: string;
  /**
   * How an instance can be put back to its state after instantiation (instance_reset.ts). Optional, so that it needs
   * no new metering version: a module prepared before it has none and gets a fresh instance per WAGI call.
   */
  reset?: ResetPlan;
}

export function readProof(module: WebAssembly.Module): MeteringProof | undefined {
  const sections = WebAssembly.Module.customSections(module, METERING_SECTION);
  if (sections.length !== 1) return undefined;
  try {
    const proof = JSON.parse(new TextDecoder().decode(sections[0])) as MeteringProof;
    return typeof proof.version === "number" && typeof proof.inline === "boolean" ? proof : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Thrown into the guest when it reaches a host call with an effect (a write, a request out) while running inline:
 * the attempt is dropped before the effect happens and the call runs again from the start on an executor, where
 * effects are allowed and nothing re-runs it. Everything before was a read, safe to repeat.
 */
export class EffectNeedsExecutor extends Error {
  constructor(readonly call: string) {
    super(`${call} has an effect: run on an executor`);
    this.name = "EffectNeedsExecutor";
  }
}

/** A call's meter while it is suspended in a host call (other calls run on the thread meanwhile). */
export interface MeterState {
  deadline: number;
  allowance: number;
  committed: boolean;
  inline: boolean;
  /** The latest the deadline may move to (the function's timeout); see Meter.resume. */
  cap: number;
  slices?: Slices;
  at: number;
}

/** Told when a call starts and stops holding the thread (the serving thread's watchdog watches those stretches). */
export interface Slices {
  enter(): void;
  leave(): void;
}

/** Thrown into the guest when its deadline has passed (or its call was cancelled). */
export class DeadlineExceeded extends Error {
  /** `final`: the function's own timeout passed (not an inline budget): the call ends, it is not re-run. */
  constructor(readonly cancelled = false, readonly final = false) {
    super(cancelled ? "cancelled" : "deadline exceeded");
    this.name = "DeadlineExceeded";
  }
}

export class Meter {
  /** performance.now() value after which the running call is aborted. */
  deadline = Infinity;
  /**
   * Set when the deadline is found passed: whether the time went in one stretch since the previous check longer than
   * half the call's allowance (a GC pause, a descheduled thread, page faults) rather than in the guest's metered work.
   */
  stalled = false;
  private lastCheck = 0;
  private allowance = Infinity;
  /**
   * Executors only: a flag the serving thread sets (shared memory) to stop the running call: CANCEL_STOP (its client
   * went away) always, CANCEL_PREEMPT (room for another project; the call runs again later) only before it committed.
   */
  cancel?: Int32Array;
  /** The running call made a host call with an effect (a write, a request out): it must not be run again. */
  committed = false;
  private hostBytes = 0;

  /** Bound once so every instance's import object shares the same function. */
  readonly tick = (): void => {
    const now = performance.now();
    if (now > this.deadline) {
      this.stalled = now - this.lastCheck > this.allowance / 2;
      throw new DeadlineExceeded(false, this.deadline >= this.cap);
    }
    this.lastCheck = now;
    if (this.cancel !== undefined && this.cancel[0] !== 0 && (this.cancel[0] === 1 || !this.committed)) {
      throw new DeadlineExceeded(true);
    }
  };

  /** A host call is about to touch `bytes` bytes of guest memory or host buffers: check the clock often enough. */
  charge(bytes: number): void {
    this.hostBytes += bytes;
    if (this.hostBytes >= HOST_BYTES_PER_CHECK) {
      this.hostBytes = 0;
      this.tick();
    }
  }

  /** The latest the running call's deadline may move to while it waits in host calls (its whole timeout). */
  cap = Infinity;
  /** The running call runs on the serving thread: a host call with an effect must not happen in it. */
  inline = false;
  slices?: Slices;

  /** The running call is about to wait in a host call: its state, to put back when it resumes. */
  suspend(): MeterState {
    const state: MeterState = {
      deadline: this.deadline,
      allowance: this.allowance,
      committed: this.committed,
      inline: this.inline,
      cap: this.cap,
      slices: this.slices,
      at: performance.now(),
    };
    this.slices?.leave();
    this.begin(Infinity, 0);
    return state;
  }

  /**
   * The call resumes. The inline budget is for time spent holding the thread, so the wait moves the deadline
   * later, never past `cap` (the function's timeout stays exact, waiting included).
   */
  resume(s: MeterState): void {
    const now = performance.now();
    this.begin(Math.min(s.cap, s.deadline + (now - s.at)), now);
    this.allowance = s.allowance;
    this.committed = s.committed;
    this.inline = s.inline;
    this.cap = s.cap;
    this.slices = s.slices;
    s.slices?.enter();
  }

  /** Starts a call at `start` (a performance.now() value): a fresh deadline, no leftover host bytes. */
  begin(deadline: number, start: number): void {
    this.deadline = deadline;
    this.allowance = deadline - start;
    this.lastCheck = start;
    this.stalled = false;
    this.hostBytes = 0;
    this.committed = false;
    this.cap = deadline;
    this.inline = false;
    this.slices = undefined;
  }
}

export const meter = new Meter();
