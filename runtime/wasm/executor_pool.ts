/**
 * A small pool of executor Workers for calls that outgrew the inline budget. Jobs queue here (not in a worker's
 * inbox) so each job's backstop timer starts when a worker actually takes it.
 */
import type { CallInput, Outcome } from "./outcome.ts";
import type { JobReply, RunJob, WireInput } from "./executor_protocol.ts";

/** How long past the function's timeout a worker may stay silent before it is terminated and replaced. */
export const BACKSTOP_GRACE_MS = 200;

export interface ExecutorJob {
  key: string;
  bytes: Uint8Array;
  name: string;
  call?: string;
  timeoutMs: number;
  input: CallInput;
}

interface Pending {
  job: ExecutorJob;
  resolve: (o: Outcome) => void;
}

interface Slot {
  worker: Worker;
  keys: Set<string>;
  running?: { jobId: number; pending: Pending; timer: ReturnType<typeof setTimeout> };
}

function toWire(input: CallInput): WireInput {
  return { ...input, headers: [...input.headers] };
}

export class ExecutorPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextJobId = 1;
  private closed = false;
  private keepWarm = false;

  constructor(private readonly size: number) {}

  run(job: ExecutorJob): Promise<Outcome> {
    if (this.closed) return Promise.resolve(executorError("the function runtime is closed"));
    return new Promise((resolve) => {
      this.queue.push({ job, resolve });
      this.dispatch();
    });
  }

  close(): void {
    this.closed = true;
    for (const slot of this.slots.splice(0)) {
      if (slot.running) {
        clearTimeout(slot.running.timer);
        slot.running.pending.resolve(executorError("the function runtime closed during the call"));
      }
      slot.worker.terminate();
    }
    for (const p of this.queue.splice(0)) p.resolve(executorError("the function runtime closed before the call ran"));
  }

  /**
   * Start one worker ahead of need: the first call that outgrows the inline budget would otherwise also wait for a
   * worker to boot (tens of milliseconds), and so would the call after a stuck worker was replaced.
   */
  warm(): void {
    this.keepWarm = true;
    if (!this.closed && this.slots.length === 0) this.spawn();
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.running);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      this.start(slot, this.queue.shift()!, false);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(new URL("./executor_worker.ts", import.meta.url).href, { type: "module" });
    const slot: Slot = { worker, keys: new Set() };
    worker.onmessage = (e: MessageEvent<JobReply>) => this.onReply(slot, e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.replace(slot, executorError(`executor crashed: ${e.message}`));
    };
    this.slots.push(slot);
    return slot;
  }

  private start(slot: Slot, pending: Pending, forceBytes: boolean): void {
    const { job } = pending;
    const jobId = this.nextJobId++;
    const msg: RunJob = {
      jobId,
      key: job.key,
      bytes: forceBytes || !slot.keys.has(job.key) ? job.bytes : undefined,
      name: job.name,
      call: job.call,
      timeoutMs: job.timeoutMs,
      input: toWire(job.input),
    };
    slot.keys.add(job.key);
    const timer = setTimeout(() => {
      // The guest ignored its metering deadline (or the worker hangs): only terminate() can stop it.
      this.replace(slot, {
        kind: "error",
        reason: "timeout",
        message: "timed out",
        logs: [{ stream: "trap", text: "timed out; executor did not stop at the deadline and was restarted" }],
      });
    }, job.timeoutMs + BACKSTOP_GRACE_MS);
    slot.running = { jobId, pending, timer };
    slot.worker.postMessage(msg);
  }

  private onReply(slot: Slot, reply: JobReply): void {
    const running = slot.running;
    if (!running || running.jobId !== reply.jobId) return;
    clearTimeout(running.timer);
    slot.running = undefined;
    if ("needBytes" in reply) {
      this.start(slot, running.pending, true);
      return;
    }
    running.pending.resolve(reply.outcome);
    this.dispatch();
  }

  /** Terminates a slot's worker, answers its job with `outcome`; a fresh worker is spawned on demand. */
  private replace(slot: Slot, outcome: Outcome): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    slot.worker.terminate();
    if (slot.running) {
      clearTimeout(slot.running.timer);
      slot.running.pending.resolve(outcome);
      slot.running = undefined;
    }
    this.dispatch();
    if (this.keepWarm) this.warm();
  }
}

function executorError(message: string): Outcome {
  return { kind: "error", reason: "trap", message, logs: [{ stream: "trap", text: message }] };
}
