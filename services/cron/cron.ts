/**
 * cron: runs functions whose trigger is `{type: cron, schedule}` at each tick of their schedule, once in the cloud.
 * Every node that runs functions keeps the same schedules (from the served deployments, re-read after each flip) and
 * wakes at each tick; for each tick one node runs it:
 * - the runner is the rendezvous choice of (project, function id, tick) among the live substrate nodes
 *   (services/cluster/rendezvous.ts): every node computes the same runner from the same directory, without talking;
 * - the runner first claims the tick in the replicated state: one key per function, ["cron", project, fn id], holding
 *   the last tick claimed, advanced in one step on the replica (StateStore.update) only when the tick is newer; a
 *   runner that finds the tick claimed (two nodes that briefly disagree on who is alive) skips it.
 * One key per function keeps the store bounded (a key per tick would leave a tombstone per tick forever), and it is
 * also the "last run tick" a node with `catchup: true` replays from: at start and after a flip, the ticks after it
 * that nobody ran, oldest first, at most CATCHUP_MAX_TICKS and none older than CATCHUP_MAX_MS. Without catchup a
 * tick that passed is gone. docs/events.md says what "once" rests on and where it does not hold (a partition).
 */
import { parseSchedule, type Schedule, ticksBetween } from "../../runtime/cron/cron.ts";
import type { EventFunctions } from "../events/functions.ts";
import type { StateStore } from "../kvdb/mod.ts";
import type { DeploymentRecord, FunctionDeployment } from "../tns/records.ts";
import { rendezvous } from "../cluster/rendezvous.ts";

export const CATCHUP_MAX_TICKS = 100;
export const CATCHUP_MAX_MS = 3_600_000;
/** Ticks (and catch-up runs) of one function waiting behind a running one, at most. */
const MAX_QUEUED = CATCHUP_MAX_TICKS + 2;
/** The scheduler re-arms at least this often, so a changed clock or a lost timer is noticed. */
const MAX_SLEEP_MS = 60_000;

/** What ["cron", project, fn id] holds: the newest tick claimed, and by whom. */
interface Claim {
  tick: number;
  node: string;
  at: number;
}

interface Job {
  project: string;
  fnId: string;
  label: string;
  record: DeploymentRecord;
  fn: FunctionDeployment;
  schedule: Schedule;
  catchup: boolean;
  /** The next tick this node wakes for. */
  next: number;
  /** Ticks of one function run one after another, oldest first. */
  chain: Promise<void>;
  /** Steps queued on the chain and not finished (shared with the job it replaced, like the chain). */
  waiting: { n: number };
}

export interface CronDeps {
  events: EventFunctions;
  state: StateStore;
  /** This node's id among the runners ("local" on tau dev). */
  self: string;
  /** The live nodes that run functions (this one included when it does). */
  runners: () => string[];
  /** The node's own log: what went wrong in the scheduler (reading schedules, claiming). */
  log: (line: string) => void;
  /** The function's log (what `tau logs --follow` shows): a tick that failed. Default: the node's log. */
  functionLog?: (line: { project: string; fn: string; requestId: string; text: string }) => void;
  /**
   * How long after start the node runs no tick (default 0): on a cloud, until it has heard every live node's
   * heartbeat. Before, it would count itself the runner of ticks that a node it has not heard of yet runs.
   */
  settleMs?: number;
}

export interface Cron {
  close(): void;
}

export function startCron(deps: CronDeps): Cron {
  const jobs = new Map<string, Job>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  let reloading = Promise.resolve();

  const arm = () => {
    clearTimeout(timer);
    if (closed || jobs.size === 0) return;
    let soonest = Infinity;
    for (const j of jobs.values()) soonest = Math.min(soonest, j.next);
    const delay = Math.max(0, Math.min(soonest - Date.now(), MAX_SLEEP_MS));
    const t = setTimeout(fire, delay);
    Deno.unrefTimer(t);
    timer = t;
  };

  const fire = () => {
    const now = Date.now();
    for (const job of jobs.values()) {
      const due: number[] = [];
      while (job.next <= now) {
        due.push(job.next);
        job.next = job.schedule.next(job.next);
      }
      // Several due at once (the process was paused): only the newest runs, unless the function asks for catchup.
      const run = job.catchup ? due.slice(-CATCHUP_MAX_TICKS) : due.slice(-1);
      for (const tick of run) queue(job, () => runTick(job, tick, String(tick)));
    }
    arm();
  };

  /**
   * Queues a step after the function's previous ones. A function slower than its period would queue without end: past
   * MAX_QUEUED steps a tick is dropped (not claimed, so it is simply missed), with a line in the node's log.
   */
  const queue = (job: Job, step: () => Promise<void>) => {
    if (job.waiting.n >= MAX_QUEUED) {
      deps.log(`cron: ${job.project}/${job.label}: a tick is skipped: ${MAX_QUEUED} are still waiting to run`);
      return;
    }
    job.waiting.n++;
    job.chain = job.chain.then(step).catch((err) => deps.log(`cron: ${job.project}/${job.label}: ${err}`))
      .finally(() => job.waiting.n--);
  };

  /** Runs `tick` if this node is its runner (chosen by `choice`) and nobody claimed it yet. */
  const runTick = async (job: Job, tick: number, choice: string) => {
    if (closed) return;
    if (rendezvous(`${job.project}/${job.fnId}/${choice}`, deps.runners()) !== deps.self) return;
    const key = ["cron", job.project, job.fnId];
    const claimed = await deps.state.update(
      [key],
      ([held]) =>
        ((held as Claim | undefined)?.tick ?? -Infinity) >= tick
          ? { writes: [], result: false }
          : { writes: [{ key, value: { tick, node: deps.self, at: Date.now() } satisfies Claim }], result: true },
    );
    if (!claimed || closed) return;
    const requestId = deps.events.newRequestId();
    const event = { kind: "cron", schedule: job.schedule.text, at: tick } as const;
    const result = await deps.events.invoke(job.record, job.fn, event, requestId);
    const text = !result.ok
      ? `cron tick ${new Date(tick).toISOString()} failed (${result.reason}): ${result.message}`
      : result.status >= 500
      ? `cron tick ${new Date(tick).toISOString()} answered ${result.status}`
      : undefined;
    if (text === undefined) return;
    if (deps.functionLog) deps.functionLog({ project: job.project, fn: job.label, requestId, text });
    else deps.log(`cron: ${job.project}/${job.label}: ${text}`);
  };

  /** The ticks since the last claimed one that nobody ran: one runner for the whole gap, so they run in order. */
  const catchUp = async (job: Job) => {
    const last = (await deps.state.get<Claim>(["cron", job.project, job.fnId]))?.tick;
    if (last === undefined) return; // never ran: a new function does not replay its history
    const now = Date.now();
    const missed = ticksBetween(
      job.schedule,
      Math.max(last, now - CATCHUP_MAX_MS),
      Math.min(now, job.next - 1),
      CATCHUP_MAX_TICKS,
    );
    if (missed.length) deps.log(`cron: ${job.project}/${job.label}: catching up ${missed.length} missed tick(s)`);
    for (const tick of missed) await runTick(job, tick, `catchup/${last}`);
  };

  const reload = async () => {
    if (closed || !deps.events.runsFunctions) return;
    const now = Date.now();
    const seen = new Set<string>();
    for (const { record, fn } of await deps.events.withTrigger("cron")) {
      const id = `${record.project}\0${fn.id}`;
      seen.add(id);
      const old = jobs.get(id);
      let schedule = old?.schedule;
      if (schedule?.text !== fn.trigger.schedule) {
        try {
          schedule = parseSchedule(fn.trigger.schedule);
        } catch (err) {
          // The build checked it: only a record from another version of tau gets here.
          deps.log(`cron: ${record.project}/${fn.name}: schedule ${fn.trigger.schedule}: ${(err as Error).message}`);
          jobs.delete(id);
          continue;
        }
      }
      const job: Job = {
        project: record.project,
        fnId: fn.id,
        label: fn.app ? `${fn.app}/${fn.name}` : fn.name,
        record,
        fn,
        schedule,
        catchup: fn.trigger.catchup,
        next: old && old.schedule === schedule ? old.next : schedule.next(now),
        chain: old?.chain ?? Promise.resolve(),
        waiting: old?.waiting ?? { n: 0 },
      };
      jobs.set(id, job);
      if (job.catchup) queue(job, () => catchUp(job));
    }
    for (const id of jobs.keys()) if (!seen.has(id)) jobs.delete(id);
    arm();
  };

  const schedule = () => {
    reloading = reloading.then(reload).catch((err) => deps.log(`cron: reading the served schedules: ${err}`));
  };
  let settled = !deps.settleMs;
  const unsubscribe = deps.events.onChange(() => settled && schedule());
  const settling = settled ? undefined : setTimeout(() => {
    settled = true;
    schedule();
  }, deps.settleMs);
  if (settling !== undefined) Deno.unrefTimer(settling);
  if (settled) schedule();

  return {
    close() {
      closed = true;
      unsubscribe();
      clearTimeout(timer);
      clearTimeout(settling);
    },
  };
}
