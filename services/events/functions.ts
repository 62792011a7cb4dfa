/**
 * The functions that events run on this node: every served deployment's functions with a non-HTTP trigger, indexed
 * by trigger type, and the one way to run one for an event. Each trigger (services/pubsub, services/commands,
 * services/cron) reads this index and calls `invoke`, which runs the function's smartops first. The index is rebuilt on
 * the first use after a TNS flip (records never change; only which record a project serves does).
 */
import type { EventResult, FunctionEvent, FunctionRuntime } from "../../runtime/wasm/mod.ts";
import { eventInput } from "../../runtime/wasm/mod.ts";
import type { SmartopGuard } from "../smartops/guard.ts";
import type { LogBus } from "../logs/bus.ts";
import type { DeploymentRecord, EventTrigger, FunctionDeployment } from "../tns/records.ts";
import type { Tns } from "../tns/tns.ts";
import type { FunctionTargets } from "../substrate/targets.ts";

export interface EventFunction<T extends EventTrigger["type"] = EventTrigger["type"]> {
  record: DeploymentRecord;
  fn: FunctionDeployment & { trigger: Extract<EventTrigger, { type: T }> };
}

export class EventFunctions {
  #index?: Promise<DeploymentRecord[]>;
  #requests = 0;
  readonly #prefix = `ev${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;
  readonly #changed = new Set<() => void>();

  constructor(
    private readonly deps: {
      tns: Tns;
      runtime: FunctionRuntime;
      targets: FunctionTargets;
      /** False on a node whose shape runs no substrate: it runs no functions (events go to a node that does). */
      runsFunctions: boolean;
      smartops?: SmartopGuard;
      /** Request lines of event calls for `tau logs --follow`. */
      logs?: LogBus;
    },
  ) {
    deps.tns.onFlip(() => {
      this.#index = undefined;
      for (const listener of this.#changed) listener();
    });
  }

  get runsFunctions(): boolean {
    return this.deps.runsFunctions;
  }

  /** Called after every flip (a trigger re-reads what it serves: subscriptions, schedules). */
  onChange(listener: () => void): () => void {
    this.#changed.add(listener);
    return () => this.#changed.delete(listener);
  }

  /** The deployments this node serves (every project's served branch). */
  served(): Promise<DeploymentRecord[]> {
    const index = this.#index ??= this.deps.tns.servedRecords();
    index.catch(() => {
      if (this.#index === index) this.#index = undefined; // a failed read is retried on the next use
    });
    return index;
  }

  /** The served record of one project, if any. */
  async record(project: string): Promise<DeploymentRecord | undefined> {
    return (await this.served()).find((r) => r.project === project);
  }

  /** Every served function whose trigger is of `type`. */
  async withTrigger<T extends EventTrigger["type"]>(type: T): Promise<EventFunction<T>[]> {
    const out: EventFunction<T>[] = [];
    for (const record of await this.served()) {
      for (const fn of record.functions) {
        if (fn.trigger?.type === type) out.push({ record, fn: fn as EventFunction<T>["fn"] });
      }
    }
    return out;
  }

  newRequestId(): string {
    return `${this.#prefix}-${(this.#requests++).toString(36)}`;
  }

  /**
   * Runs `fn` for `event` with the same limits, bindings and logs as an HTTP call of it, after its smartops allowed
   * it (a denial answers reason "denied" and the function does not run).
   */
  async invoke(
    record: DeploymentRecord,
    fn: FunctionDeployment,
    event: Exclude<FunctionEvent, { kind: "smartop" }>,
    requestId = this.newRequestId(),
  ): Promise<EventResult> {
    const input = eventInput(event, requestId);
    if (fn.smartops?.length && this.deps.smartops) {
      const name = fn.app ? `${fn.app}/${fn.name}` : fn.name;
      const denial = await this.deps.smartops.check(record, fn.smartops, `function/${name}`, input);
      if (denial) {
        return { ok: false, reason: "denied", message: `denied by smartop ${denial.smartop}: ${denial.reason}` };
      }
    }
    return await this.deps.runtime.invokeEvent(this.deps.targets.of(record, fn), input);
  }
}
