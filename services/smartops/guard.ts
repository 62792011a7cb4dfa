/**
 * Smartops: code that runs before the resource it is tagged on (`tags: [smartops:<name>]`) and decides whether the
 * call goes ahead. A smartop is a function module; it runs with its own limits and the same ABIs as a function.
 *
 * What it gets (docs/events.md "Smartops"): the call it guards, HTTP-shaped. For an HTTP request, its method, path,
 * query and headers (not its body: a smartop decides on who asks and for what, and the body stays unread for the
 * resource); for an event, the event's input (POST /, body = message or command data, x-tau-* headers). Two headers
 * say what it guards: `x-tau-event: smartop` and `x-tau-resource: <kind>/<name>` (function/api, website/app/docs).
 * Taubyte guests see the same through their HTTP event calls.
 *
 * What it answers: a 2xx status lets the call go ahead. Any other status denies it: the caller gets 403 with the
 * smartop's reason (the first line of its body, at most MAX_REASON characters, or its status). A smartop that traps,
 * times out, is busy or cannot load denies the call too: the call is never let through unchecked. Every denial is a
 * line in the smartop's function log. Several smartops on one resource run in tag order; the first denial stops.
 */
import type { CallInput, EventResult, FunctionRuntime } from "../../runtime/wasm/mod.ts";
import type { DeploymentRecord, SmartopDeployment } from "../tns/records.ts";
import type { FunctionTargets } from "../substrate/targets.ts";

/** Longest reason passed on to the caller: a smartop must not be able to make the node send megabytes per denial. */
export const MAX_REASON = 300;

export interface Denial {
  smartop: string;
  reason: string;
}

export class SmartopGuard {
  constructor(
    private readonly deps: {
      runtime: FunctionRuntime;
      targets: FunctionTargets;
      /** Where denials are logged (the smartop's function log). */
      log?: (project: string, smartop: string, requestId: string, text: string) => void;
    },
  ) {}

  /**
   * Runs the smartops `labels` of `record` for the call `input` describes, guarding `resource` (kind/name). Resolves
   * undefined when every one allowed it, else the first denial.
   */
  async check(
    record: DeploymentRecord,
    labels: string[],
    resource: string,
    input: CallInput,
  ): Promise<Denial | undefined> {
    const headers = new Headers(input.headers);
    headers.set("x-tau-event", "smartop");
    headers.set("x-tau-resource", resource);
    const guarded: CallInput = { ...input, headers, event: { kind: "smartop", resource } };
    for (const label of labels) {
      const op = findSmartop(record, label);
      const denial = op
        ? verdict(label, await this.deps.runtime.invokeEvent(this.deps.targets.of(record, op), guarded))
        : { smartop: label, reason: `smartop ${label} is not in the deployment` };
      if (denial) {
        this.deps.log?.(record.project, label, input.requestId, `denied ${resource}: ${denial.reason}`);
        return denial;
      }
    }
    return undefined;
  }
}

function findSmartop(record: DeploymentRecord, label: string): SmartopDeployment | undefined {
  return record.smartops?.find((s) => (s.app ? `${s.app}/${s.name}` : s.name) === label);
}

const decoder = new TextDecoder();

/** A smartop's answer as a decision: undefined allows, a Denial denies (fail closed on every failure). */
export function verdict(label: string, result: EventResult): Denial | undefined {
  if (!result.ok) {
    const why = result.reason === "timeout" ? "timed out" : result.reason === "trap" ? "trapped" : result.reason;
    return { smartop: label, reason: `smartop ${label} ${why}, so the call is denied` };
  }
  if (result.status >= 200 && result.status < 300) return undefined;
  const text = decoder.decode(result.body.subarray(0, MAX_REASON * 4)).split("\n")[0].trim().slice(0, MAX_REASON);
  return { smartop: label, reason: text || `smartop ${label} answered ${result.status}` };
}
