/**
 * A rollout: what happens between a finished build (or a rollback request) and the new deployment serving.
 *   admit    may it be served at all (its custom domains validated, on a cloud with domain validation)
 *   keep     on a cloud, its content has its first copies on other nodes (services/hoarder)
 *   prepare  start what the deployment runs (its containers) and wait until it answers
 *   flip     move the branch's pointer in TNS (one write; TNS refuses when another project owns an FQDN)
 *   release  the preparer's hold on what it started, flip or no flip
 *   sweep    whatever no served deployment wants any more is retired, on TNS's flip event (substrate)
 * Only the served branch runs anything; other branches are recorded and pointed at, not started.
 */
import type { DeploymentRecord, DeploymentRef } from "../tns/records.ts";
import { SERVED_BRANCH, type Tns } from "../tns/tns.ts";

/** Readies what a deployment needs to run; the returned function is called once the flip is done or has failed. */
export type Preparer = (record: DeploymentRecord, log?: (line: string) => void) => Promise<() => void>;

/** Throws (a TauError saying what to do) when a deployment may not be served: domain validation (services/dv). */
export type Admission = (record: DeploymentRecord) => Promise<void>;

/** Keeps a deployment's content on enough nodes before it serves (services/hoarder); absent on a single node. */
export interface ContentKeeper {
  /** Before TNS records a new deployment: its content has its copies; throws when it cannot get them in time. */
  secureContent(record: DeploymentRecord, log?: (line: string) => void): Promise<void>;
  /** Before a flip: the deployment (record and content) is kept and has its copies; throws when it was released. */
  secureDeployment(project: string, branch: string, ref: DeploymentRef, log?: (line: string) => void): Promise<void>;
}

export interface RolloutSteps {
  prepare?: Preparer;
  admit?: Admission;
  keeper?: ContentKeeper;
}

export class Rollout {
  readonly #tns: Tns;
  readonly #prepare: Preparer;
  readonly #admit: Admission;
  readonly #keeper?: ContentKeeper;

  constructor(tns: Tns, steps: RolloutSteps = {}) {
    this.#tns = tns;
    this.#prepare = steps.prepare ?? (() => Promise.resolve(() => {}));
    this.#admit = steps.admit ?? (() => Promise.resolve());
    this.#keeper = steps.keeper;
  }

  async #prepared(record: DeploymentRecord, log?: (line: string) => void): Promise<() => void> {
    return record.branch === SERVED_BRANCH ? await this.#prepare(record, log) : () => {};
  }

  /** A new deployment: nothing is recorded when admitting, keeping or preparing it fails. */
  async publish(record: DeploymentRecord, log?: (line: string) => void): Promise<DeploymentRef> {
    if (record.branch === SERVED_BRANCH) await this.#admit(record);
    await this.#keeper?.secureContent(record, log);
    const release = await this.#prepared(record, log);
    try {
      const ref = await this.#tns.add(record);
      await this.#keeper?.secureDeployment(record.project, record.branch, ref, log);
      await this.#tns.flip(record.project, record.branch, ref);
      return ref;
    } finally {
      release();
    }
  }

  /** Back to the previous deployment, or to the one built from `to` (commit prefix, deployment id or CID). */
  async rollback(project: string, branch: string, to?: string): Promise<DeploymentRef> {
    const target = await this.#tns.rollbackTarget(project, branch, to);
    await this.#keeper?.secureDeployment(project, branch, target);
    const release = await this.#prepared(await this.#tns.record(target.cid));
    try {
      await this.#tns.flip(project, branch, target);
      return target;
    } finally {
      release();
    }
  }
}
