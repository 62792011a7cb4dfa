/**
 * A rollout: what happens between a finished build (or a rollback request) and the new deployment serving.
 *   admit    may it be served at all (its custom domains validated, on a cloud with domain validation)
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

export class Rollout {
  readonly #tns: Tns;
  readonly #prepare: Preparer;
  readonly #admit: Admission;

  constructor(
    tns: Tns,
    prepare: Preparer = () => Promise.resolve(() => {}),
    admit: Admission = () => Promise.resolve(),
  ) {
    this.#tns = tns;
    this.#prepare = prepare;
    this.#admit = admit;
  }

  async #prepared(record: DeploymentRecord, log?: (line: string) => void): Promise<() => void> {
    return record.branch === SERVED_BRANCH ? await this.#prepare(record, log) : () => {};
  }

  /** A new deployment: nothing is recorded when preparing it fails, so history holds only deployments that served. */
  async publish(record: DeploymentRecord, log?: (line: string) => void): Promise<DeploymentRef> {
    if (record.branch === SERVED_BRANCH) await this.#admit(record);
    const release = await this.#prepared(record, log);
    try {
      const ref = await this.#tns.add(record);
      await this.#tns.flip(record.project, record.branch, ref);
      return ref;
    } finally {
      release();
    }
  }

  /** Back to the previous deployment, or to the one built from `to` (commit prefix, deployment id or CID). */
  async rollback(project: string, branch: string, to?: string): Promise<DeploymentRef> {
    const target = await this.#tns.rollbackTarget(project, branch, to);
    const release = await this.#prepared(await this.#tns.record(target.cid));
    try {
      await this.#tns.flip(project, branch, target);
      return target;
    } finally {
      release();
    }
  }
}
