/**
 * A WAGI instance reset between calls instead of a fresh one per call. A new instance costs ~100-240 us on this VM (a
 * new memory and its guard region, data segments copied into fresh pages, a page fault on every page the call
 * touches, and the garbage collection of the one before); putting a 128 KiB memory back costs ~3 us.
 *
 * Right after instantiation (its start function included, before any request reaches it) the instance's state is
 * saved: the non-zero parts of its memory and the values of its mutable globals, which prepareModule exports for this
 * (prepare_reset.ts). After a call that returned normally the memory is put back to that image (zeroed where it was
 * zero, copied where it was not) and the globals to their values, so the next call starts from exactly what a fresh
 * instance would start from: nothing one call wrote is visible to the next. Tables and data segments need nothing:
 * prepareModule plans a reset only for modules that never change them. A call whose memory grew cannot be put back
 * (a memory never shrinks), nor one that trapped, timed out or exited through proc_exit: its instance is dropped.
 */

/**
 * Bumped whenever what prepareModule writes for resets changes meaning. A module with no plan, or one of another
 * version, gets a fresh instance per call (the old path) until its next build (the build cache key includes this).
 */
export const RESET_VERSION = 1;

/** What prepareModule found (in the proof section): the exported mutable globals, or why there can be no reset. */
export interface ResetPlan {
  version: number;
  /** Export names of every mutable global (the metering's fuel among them). */
  globals?: string[];
  /**
   * Where instantiation writes into memory, as sorted, disjoint [offset, length] ranges (the active data segments);
   * everything else starts zero. Absent when instantiation may write elsewhere (a start function): the whole memory
   * is then saved.
   */
  data?: [number, number][];
  why?: string;
}

/**
 * Memories larger than this get a fresh instance per call: a reset writes the whole memory, a fresh instance pays
 * only for the pages a call touches. Measured (a call touching 4 pages; fresh vs reset, us): 128 KiB 45 vs 5, 1 MiB
 * 46 vs 24, 4 MiB 207 vs 126, 16 MiB 280 vs 2,757 (past the caches). A kept instance also keeps its whole memory
 * resident (the reset writes every page), so the bound is kept low: 2 MiB takes C (128 KiB), AssemblyScript and Rust
 * (17 pages: its 1 MiB stack) modules as built by default.
 */
export const RESET_MAX_BYTES = 2 * 1024 * 1024;

interface Run {
  start: number;
  end: number;
  /** absent: the run was all zeros */
  data?: Uint8Array;
}

export class InstanceSnapshot {
  private view: Uint8Array;

  private constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly size: number,
    private readonly runs: Run[],
    private readonly globals: WebAssembly.Global[],
    private readonly values: unknown[],
  ) {
    this.view = new Uint8Array(memory.buffer);
  }

  /** Saves a just-instantiated instance; undefined when it cannot be reset (see ResetPlan, RESET_MAX_BYTES). */
  static take(
    instance: WebAssembly.Instance,
    memory: WebAssembly.Memory,
    plan?: ResetPlan,
  ): InstanceSnapshot | undefined {
    if (plan?.version !== RESET_VERSION || !Array.isArray(plan.globals)) return undefined;
    const size = memory.buffer.byteLength;
    if (size > RESET_MAX_BYTES) return undefined;
    const globals: WebAssembly.Global[] = [];
    for (const name of plan.globals) {
      const g = instance.exports[name];
      if (!(g instanceof WebAssembly.Global)) return undefined;
      globals.push(g);
    }
    // The image is taken from the memory itself, right after instantiation: what the data segments wrote, cut
    // where prepareModule said they are (scanning the memory for them cost ~3 ms on a module's first call).
    const bytes = new Uint8Array(memory.buffer);
    const runs: Run[] = [];
    if (!Array.isArray(plan.data)) runs.push({ start: 0, end: size, data: bytes.slice() });
    else {
      let at = 0;
      for (const [offset, length] of plan.data) {
        const end = Math.min(offset + length, size);
        if (!(offset >= at && end > offset)) return undefined; // not sorted and disjoint: not what prepare writes
        if (offset > at) runs.push({ start: at, end: offset });
        runs.push({ start: offset, end, data: bytes.slice(offset, end) });
        at = end;
      }
      if (at < size) runs.push({ start: at, end: size });
    }
    return new InstanceSnapshot(memory, size, runs, globals, globals.map((g) => g.value));
  }

  /** Puts the instance back as it was saved; false when that is impossible (its memory grew): drop the instance. */
  restore(): boolean {
    // memory.grow detaches the buffer (even a grow by 0 pages): only then is `memory.buffer` read again.
    if (this.view.length === 0) this.view = new Uint8Array(this.memory.buffer);
    const mem = this.view;
    if (mem.length !== this.size) return false;
    for (const run of this.runs) {
      if (run.data) mem.set(run.data, run.start);
      else mem.fill(0, run.start, run.end);
    }
    for (let i = 0; i < this.globals.length; i++) this.globals[i].value = this.values[i];
    return true;
  }
}
