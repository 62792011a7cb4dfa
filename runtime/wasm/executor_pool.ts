/**
 * A small pool of executor Workers for calls that outgrew the inline budget (or may not run inline at all).
 *
 * Fair across projects: each project has its own queue, and a free worker takes the next job of the project served
 * least recently. Under contention a project runs at most `perProject` jobs at once (default: half the workers, at
 * least one), so one project's loops leave the other workers to everyone else. Alone, a project may use every
 * worker (a strict cap halved a lone project's executor throughput); when another project then has work waiting, a
 * job over its project's cap is stopped at its next metering check and put back at the head of its queue, to run
 * again from the start (safe: a guest's only effects are its response and logs). A project's queue holds at most
 * MAX_QUEUED_PER_PROJECT jobs, and a job that waited its whole timeout for a worker is answered 503: callers are
 * told "busy" at once rather than left hanging. A job whose client went away (its AbortSignal) leaves the queue, or,
 * if running, is stopped at its next metering check through a flag in shared memory (cheaper than restarting the
 * worker). Jobs queue here, not in a worker's inbox, so each job's backstop timer starts when a worker takes it.
 * A job whose guest calls host services sends each operation here (host/bridge.ts); it runs on the job's own
 * services and the answer goes back to that worker. Once such a call has had an effect it is never preempted
 * (the worker ignores CANCEL_PREEMPT from then on), so nothing with an effect runs twice.
 */
import type { CallInput, Outcome } from "./outcome.ts";
import {
  CANCEL_PREEMPT,
  CANCEL_STOP,
  type JobReply,
  type RunJob,
  type WireInput,
  type WorkerBooted,
} from "./executor_protocol.ts";
import { answerHostCall, type HostCall } from "./host/bridge.ts";
import type { HostServices, SelfInfo } from "./host/services.ts";

/** How long past the function's timeout a worker may stay silent before it is terminated and replaced. */
export const BACKSTOP_GRACE_MS = 200;
/**
 * How long a new worker may take to boot (load its modules, answer its init) before it counts as crashed. Booting
 * measured ~80-300 ms; a job's own timeout starts only once its worker has booted, so this bound is the only one on
 * the wait for a worker that never comes up.
 */
export const BOOT_TIMEOUT_MS = 30_000;
/**
 * Jobs one project may have waiting for a worker; more answer 503 at once. The wait itself is bounded by each job's
 * timeout; this bound only answers a flood at once. 32 turned a 64-connection benchmark of a function that had been
 * pinned to the executors into 503s.
 */
export const MAX_QUEUED_PER_PROJECT = 256;

export function defaultPerProject(size: number): number {
  return Math.max(1, Math.floor(size / 2));
}

export interface ExecutorJob {
  key: string;
  bytes: Uint8Array;
  name: string;
  call?: string;
  timeoutMs: number;
  input: CallInput;
  /** Whose job it is: the unit of fairness and of the concurrency cap. */
  project: string;
  /** The services the function's deployment binds; its host calls run on them, here on the serving thread. */
  host?: HostServices;
  self?: SelfInfo;
}

interface Pending {
  job: ExecutorJob;
  resolve: (o: Outcome) => void;
  settled: boolean;
  waitTimer?: ReturnType<typeof setTimeout>;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Slot {
  worker: Worker;
  /** Set once the worker answered its init: a job's backstop timer starts then, not while the worker boots. */
  booted: boolean;
  bootTimer?: ReturnType<typeof setTimeout>;
  keys: Set<string>;
  /** [0] = 1 asks the running job to stop (read by the worker's meter at its next tick). */
  cancel: Int32Array;
  running?: {
    jobId: number;
    pending: Pending;
    /** The backstop; undefined while the worker boots. */
    timer?: ReturnType<typeof setTimeout>;
    started: number;
    preempted?: boolean;
  };
}

interface ProjectState {
  queue: Pending[];
  running: number;
  lastServed: number;
}

function toWire(input: CallInput): WireInput {
  return { ...input, headers: [...input.headers] };
}

export interface ExecutorPoolOptions {
  size: number;
  perProject?: number;
  maxQueuedPerProject?: number;
}

export class ExecutorPool {
  private readonly slots: Slot[] = [];
  private readonly projects = new Map<string, ProjectState>();
  private readonly size: number;
  readonly perProject: number;
  private readonly maxQueued: number;
  private nextJobId = 1;
  private starts = 0;
  private served = 0;
  private closed = false;
  private keepWarm = false;
  private warmOnUse = false;

  constructor(opts: number | ExecutorPoolOptions) {
    const o = typeof opts === "number" ? { size: opts } : opts;
    this.size = Math.max(1, o.size);
    this.perProject = Math.max(1, Math.min(this.size, o.perProject ?? defaultPerProject(this.size)));
    this.maxQueued = o.maxQueuedPerProject ?? MAX_QUEUED_PER_PROJECT;
  }

  /** Workers started (running a job or waiting for one). */
  get workers(): number {
    return this.slots.length;
  }

  /** Workers running a job now. */
  get busy(): number {
    return this.slots.filter((s) => s.running).length;
  }

  run(job: ExecutorJob, signal?: AbortSignal): Promise<Outcome> {
    if (this.closed) return Promise.resolve(executorError("the function runtime is closed"));
    if (signal?.aborted) return Promise.resolve(cancelled());
    const state = this.project(job.project);
    if (state.queue.length >= this.maxQueued) {
      return Promise.resolve(
        busy(`project ${job.project} already has ${state.queue.length} calls waiting for an executor`),
      );
    }
    return new Promise((resolve) => {
      const pending: Pending = { job, resolve, settled: false, signal };
      this.waitAtMostTimeout(pending);
      if (signal) {
        pending.onAbort = () => this.abandon(pending);
        signal.addEventListener("abort", pending.onAbort, { once: true });
      }
      state.queue.push(pending);
      this.dispatch();
    });
  }

  private waitAtMostTimeout(pending: Pending) {
    const { job } = pending;
    pending.waitTimer = setTimeout(() => {
      this.unqueue(pending);
      this.settle(pending, busy(`waited ${job.timeoutMs}ms for an executor (project ${job.project} is at its limit)`));
    }, job.timeoutMs);
  }

  close(): void {
    this.closed = true;
    for (const slot of this.slots.splice(0)) {
      if (slot.running) {
        clearTimeout(slot.running.timer);
        this.settle(slot.running.pending, executorError("the function runtime closed during the call"));
      }
      clearTimeout(slot.bootTimer);
      slot.worker.terminate();
    }
    for (const state of this.projects.values()) {
      for (const p of state.queue.splice(0)) {
        this.settle(p, executorError("the function runtime closed before the call ran"));
      }
    }
  }

  /**
   * Start one worker ahead of need: the first call that outgrows the inline budget would otherwise also wait for a
   * worker to boot (~80-300 ms), and so would the call after a stuck worker was replaced.
   */
  warm(): void {
    this.keepWarm = true;
    if (!this.closed && this.slots.length === 0) this.spawn();
  }

  /**
   * Keep one worker booted from the first call that needs one on, not before: an idle worker holds ~10 MB, which a
   * node whose functions never outgrow the inline budget need not pay. That first call waits for the boot.
   */
  warmAfterFirstUse(): void {
    this.warmOnUse = true;
    if (this.slots.length > 0) this.warm();
  }

  private project(name: string): ProjectState {
    let state = this.projects.get(name);
    if (!state) this.projects.set(name, state = { queue: [], running: 0, lastServed: 0 });
    return state;
  }

  /** The next job: from a project with work waiting (under its cap, unless `overCap`), served least recently. */
  private next(overCap: boolean): { state: ProjectState; pending: Pending } | undefined {
    let best: ProjectState | undefined;
    for (const state of this.projects.values()) {
      if (state.queue.length === 0 || (!overCap && state.running >= this.perProject)) continue;
      if (!best || state.lastServed < best.lastServed) best = state;
    }
    if (!best) return undefined;
    return { state: best, pending: best.queue.shift()! };
  }

  private dispatch(): void {
    while (!this.closed) {
      let slot = this.slots.find((s) => !s.running);
      if (!slot && this.slots.length >= this.size) {
        this.preemptForWaiting();
        break;
      }
      const next = this.next(false) ?? this.next(true);
      if (!next) break;
      slot ??= this.spawn();
      next.state.running++;
      next.state.lastServed = ++this.served;
      this.start(slot, next.pending, false);
    }
    // Forget idle projects so the map does not grow with every project that ever overran.
    for (const [name, state] of this.projects) {
      if (state.queue.length === 0 && state.running === 0) this.projects.delete(name);
    }
  }

  /**
   * Every worker is busy: for each project waiting under its cap, stop one job of a project over its cap (the one
   * started last). It ends at its next metering check, and onReply puts it back in its queue.
   */
  private preemptForWaiting(): void {
    const stopping = (project: string) =>
      this.slots.filter((s) => s.running?.preempted && s.running.pending.job.project === project).length;
    let wanted = -this.slots.filter((s) => s.running?.preempted).length;
    for (const state of this.projects.values()) {
      if (state.queue.length > 0 && state.running < this.perProject) {
        wanted += Math.min(state.queue.length, this.perProject - state.running);
      }
    }
    for (; wanted > 0; wanted--) {
      let victim: Slot | undefined;
      for (const s of this.slots) {
        const r = s.running;
        if (!r || r.preempted || r.pending.settled) continue;
        const project = r.pending.job.project;
        if ((this.projects.get(project)?.running ?? 0) - stopping(project) <= this.perProject) continue;
        if (!victim || r.started > victim.running!.started) victim = s;
      }
      if (!victim) return;
      victim.running!.preempted = true;
      Atomics.store(victim.cancel, 0, CANCEL_PREEMPT);
    }
  }

  private spawn(): Slot {
    if (this.warmOnUse) this.keepWarm = true;
    const worker = new Worker(new URL("./executor_worker.ts", import.meta.url).href, { type: "module" });
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    const slot: Slot = { worker, keys: new Set(), cancel, booted: false };
    worker.postMessage({ init: true, cancel: cancel.buffer });
    slot.bootTimer = setTimeout(() => {
      this.replace(slot, executorError(`executor did not start within ${BOOT_TIMEOUT_MS / 1000} s`));
    }, BOOT_TIMEOUT_MS);
    Deno.unrefTimer(slot.bootTimer as unknown as number); // an idle node may exit while a worker boots
    worker.onmessage = (e: MessageEvent<JobReply | WorkerBooted>) => {
      const msg = e.data;
      if ("booted" in msg) this.onBooted(slot);
      else if ("hostCall" in msg) this.onHostCall(slot, msg.hostCall);
      else this.onReply(slot, msg);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.replace(slot, executorError(`executor crashed: ${e.message}`));
    };
    this.slots.push(slot);
    return slot;
  }

  private start(slot: Slot, pending: Pending, forceBytes: boolean): void {
    const { job } = pending;
    clearTimeout(pending.waitTimer);
    const jobId = this.nextJobId++;
    const msg: RunJob = {
      jobId,
      key: job.key,
      bytes: forceBytes || !slot.keys.has(job.key) ? job.bytes : undefined,
      name: job.name,
      call: job.call,
      timeoutMs: job.timeoutMs,
      input: toWire(job.input),
      self: job.self,
    };
    slot.keys.add(job.key);
    Atomics.store(slot.cancel, 0, pending.settled ? CANCEL_STOP : 0);
    pending.waitTimer = undefined;
    slot.running = { jobId, pending, started: ++this.starts };
    if (slot.booted) this.arm(slot);
    slot.worker.postMessage(msg);
  }

  private onBooted(slot: Slot): void {
    slot.booted = true;
    clearTimeout(slot.bootTimer);
    if (slot.running && slot.running.timer === undefined) this.arm(slot);
  }

  /** The backstop of the job running on `slot`, from now: its worker is booted and runs it. */
  private arm(slot: Slot): void {
    const running = slot.running!;
    running.timer = setTimeout(() => {
      // The guest ignored its metering deadline (or the worker hangs): only terminate() can stop it.
      this.replace(slot, {
        kind: "error",
        reason: "timeout",
        message: "timed out",
        logs: [{ stream: "trap", text: "timed out; executor did not stop at the deadline and was restarted" }],
      });
    }, running.pending.job.timeoutMs + BACKSTOP_GRACE_MS);
  }

  private onReply(slot: Slot, reply: Exclude<JobReply, HostCall>): void {
    const running = slot.running;
    if (!running || running.jobId !== reply.jobId) return;
    clearTimeout(running.timer);
    slot.running = undefined;
    if ("needBytes" in reply) {
      this.start(slot, running.pending, true);
      this.dispatch(); // a preemption asked of the first attempt is asked again
      return;
    }
    this.finished(running.pending);
    const o = reply.outcome;
    if (running.preempted && !running.pending.settled && o.kind === "error" && o.reason === "cancelled") {
      // Stopped to make room for another project: run it again from the start when its turn comes.
      this.project(running.pending.job.project).queue.unshift(running.pending);
      this.waitAtMostTimeout(running.pending);
    } else {
      this.settle(running.pending, o);
    }
    this.dispatch();
  }

  /** A host operation from the job running on `slot`; one from a job that already ended is refused. */
  private onHostCall(slot: Slot, call: HostCall["hostCall"]): void {
    const running = slot.running;
    const host = running?.jobId === call.jobId ? running.pending.job.host : undefined;
    answerHostCall(host, call).then((reply) => {
      if (this.slots.includes(slot)) slot.worker.postMessage(reply);
    });
  }

  /** The client went away: a queued job leaves its queue; a running one is asked to stop at its next check. */
  private abandon(pending: Pending): void {
    if (this.unqueue(pending)) {
      this.settle(pending, cancelled());
      return;
    }
    const slot = this.slots.find((s) => s.running?.pending === pending);
    if (slot) Atomics.store(slot.cancel, 0, CANCEL_STOP);
    this.settle(pending, cancelled());
  }

  private unqueue(pending: Pending): boolean {
    const state = this.projects.get(pending.job.project);
    const i = state ? state.queue.indexOf(pending) : -1;
    if (i < 0) return false;
    state!.queue.splice(i, 1);
    return true;
  }

  private finished(pending: Pending): void {
    const state = this.projects.get(pending.job.project);
    if (state) state.running--;
  }

  private settle(pending: Pending, outcome: Outcome): void {
    if (pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.waitTimer);
    if (pending.onAbort) pending.signal?.removeEventListener("abort", pending.onAbort);
    pending.resolve(outcome);
  }

  /** Terminates a slot's worker, answers its job with `outcome`; a fresh worker is spawned on demand. */
  private replace(slot: Slot, outcome: Outcome): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    clearTimeout(slot.bootTimer);
    slot.worker.terminate();
    if (slot.running) {
      clearTimeout(slot.running.timer);
      this.finished(slot.running.pending);
      this.settle(slot.running.pending, outcome);
      slot.running = undefined;
    }
    this.dispatch();
    if (this.keepWarm) this.warm();
  }
}

function executorError(message: string): Outcome {
  return { kind: "error", reason: "trap", message, logs: [{ stream: "trap", text: message }] };
}

function busy(message: string): Outcome {
  return { kind: "error", reason: "busy", message, logs: [{ stream: "trap", text: message }] };
}

function cancelled(): Outcome {
  return { kind: "error", reason: "cancelled", message: "the client went away", logs: [] };
}
