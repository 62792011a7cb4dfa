/**
 * TNS, the name system: which deployment each project branch serves, and which project owns each host. A plain name
 * store over the cloud's replicated state (services/kvdb): the same code on one node (`tau dev`) and on many.
 * Orchestration (start containers before the flip, release after) is the rollout's job (services/rollout).
 *
 * Keys (first part "tns"):
 *   ["tns", "deploy", project, branch, deployId] -> DeploymentRef   written once
 *   ["tns", "current", project, branch]          -> { id }          the one pointer per branch that moves
 *   ["tns", "claim", fqdn, project]              -> Claim           each project writes only its own claim keys
 * Who owns an FQDN: of the projects with an active claim on it, the one that claimed it first (the version of its
 * claim entry: the replicated store's clock, ordered the same on every node), then by project name. Every replica
 * computes the same owner from the same entries, so two projects claiming one FQDN (even on two sides of a partition)
 * end with exactly one owner everywhere once the replicas meet; the other is told its claim was lost.
 */
import { TauError } from "../../runtime/errors.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import type { Entry, StateStore } from "../kvdb/mod.ts";
import { type DeploymentRecord, type DeploymentRef, fqdnsOf } from "./records.ts";

/** Only this branch is served on the project's domains; other branches get records and pointers (previews later). */
export const SERVED_BRANCH = "main";

export interface HostOwner {
  project: string;
  branch: string;
}

/**
 * A project's claim on an FQDN. Its version in the store (hybrid clock time, counter, writer) is when it became
 * active: it is written only when it changes, so an active claim keeps the version of its activation.
 */
interface Claim {
  active: boolean;
}

const claimKey = (fqdn: string, project: string) => ["tns", "claim", fqdn.toLowerCase(), project];

export interface ClaimLost {
  fqdn: string;
  project: string;
  owner: string;
}

function compareSince(a: [number, number, string], b: [number, number, string]): number {
  return a[0] - b[0] || a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);
}

export class Tns {
  #state: StateStore;
  #store: ContentStore;
  #records = new Map<string, DeploymentRecord>(); // by CID: records never change
  #flipListeners = new Set<(project: string, branch: string) => void>();
  #lostListeners = new Set<(lost: ClaimLost) => void>();
  #seq = 0;

  constructor(state: StateStore, store: ContentStore, readonly nodeId = "local") {
    this.#state = state;
    this.#store = store;
    // Pointer moves and claim changes made anywhere (here, or merged from another replica) are events.
    state.onChange((entries) => this.#changed(entries));
  }

  /**
   * Called after every pointer flip or ownership change, wherever it was made: caches drop what they hold.
   * project "*" means any project may have changed.
   */
  onFlip(listener: (project: string, branch: string) => void): () => void {
    this.#flipListeners.add(listener);
    return () => this.#flipListeners.delete(listener);
  }

  /** Called when a project's claim on an FQDN turns out to have lost to an earlier one (seen after a partition). */
  onClaimLost(listener: (lost: ClaimLost) => void): () => void {
    this.#lostListeners.add(listener);
    return () => this.#lostListeners.delete(listener);
  }

  async #changed(entries: Entry[]): Promise<void> {
    const flipped = new Map<string, [string, string]>();
    for (const e of entries) {
      // "Anything may have changed" (a cache found the store moved under it): every listener drops everything.
      if (e.key[0] === "*") flipped.set("*", ["*", "*"]);
      if (e.key[0] !== "tns") continue;
      if (e.key[1] === "current") flipped.set(`${e.key[2]}/${e.key[3]}`, [e.key[2], e.key[3]]);
      if (e.key[1] === "claim") {
        const owner = await this.resolveHost(e.key[2]).catch(() => null);
        for (const c of await this.#claims(e.key[2])) {
          // Every claimant's caches drop: a cache may still map the FQDN to a project that no longer owns it.
          flipped.set(`${c.project}/${SERVED_BRANCH}`, [c.project, SERVED_BRANCH]);
          if (c.active && owner && c.project !== owner.project) {
            for (const l of this.#lostListeners) l({ fqdn: e.key[2], project: c.project, owner: owner.project });
          }
        }
      }
    }
    for (const [project, branch] of flipped.values()) for (const l of this.#flipListeners) l(project, branch);
  }

  /** Store the record (content-addressed) and a reference to it; the pointer does not move yet. */
  async add(record: DeploymentRecord): Promise<DeploymentRef> {
    const bytes = new TextEncoder().encode(JSON.stringify(record));
    const cid = await this.#store.addBytes(bytes);
    this.#records.set(cid, record);
    // Unique across nodes and sorted by time: ms, then this node's id, then a counter within this process.
    const id = `${Date.now().toString().padStart(14, "0")}-${this.nodeId.slice(-8)}-${
      (this.#seq++ % 1000).toString().padStart(3, "0")
    }`;
    const ref: DeploymentRef = {
      id,
      cid,
      commit: record.commit,
      configCommit: record.configCommit,
      codeCommit: record.codeCommit,
      jobId: record.jobId,
      createdAt: record.createdAt,
      fqdns: fqdnsOf(record),
    };
    await this.#state.set(["tns", "deploy", record.project, record.branch, id], ref);
    return ref;
  }

  /**
   * Point the branch at `ref`. On the served branch this claims its FQDNs first and refuses (nothing moved, the
   * claims it made released) when another project owns one; FQDNs the branch no longer serves are released after.
   */
  async flip(project: string, branch: string, ref: DeploymentRef): Promise<void> {
    const served = branch === SERVED_BRANCH;
    if (served) {
      const made: string[] = [];
      for (const fqdn of ref.fqdns) {
        const mine = await this.#state.get<Claim>(claimKey(fqdn, project));
        if (!mine?.active) {
          await this.#state.set(claimKey(fqdn, project), { active: true } satisfies Claim);
          made.push(fqdn);
        }
      }
      for (const fqdn of ref.fqdns) {
        const owner = await this.resolveHost(fqdn);
        if (owner && owner.project !== project) {
          for (const f of made) await this.#state.set(claimKey(f, project), { active: false } satisfies Claim);
          throw new TauError(`domain ${fqdn} is already served by project ${owner.project}`, {
            hint: "use another fqdn, or remove the domain from the other project first",
            status: 409,
          });
        }
      }
    }
    const previous = await this.current(project, branch).catch(() => null);
    await this.#state.set(["tns", "current", project, branch], { id: ref.id });
    if (served) {
      for (const old of previous?.ref.fqdns ?? []) {
        if (!ref.fqdns.includes(old)) {
          await this.#state.set(claimKey(old, project), { active: false } satisfies Claim);
        }
      }
    }
  }

  /** Withdraw a project's claim on an FQDN (a claim that lost to an earlier one, once its build was told). */
  async releaseClaim(fqdn: string, project: string): Promise<void> {
    await this.#state.set(claimKey(fqdn, project), { active: false } satisfies Claim);
  }

  /** The deployment to go back to: the one before the current, or the one built from `to` (commit prefix, id, CID). */
  async rollbackTarget(project: string, branch: string, to?: string): Promise<DeploymentRef> {
    const history = await this.history(project, branch);
    const currentId = await this.currentId(project, branch);
    if (!currentId) throw new TauError(`project ${project} has no deployment on branch ${branch}`, { status: 404 });
    if (to) {
      const target = history.find((r) =>
        [r.commit, r.configCommit, r.codeCommit].some((c) => c && c.startsWith(to)) || r.id === to || r.cid === to
      );
      if (!target) {
        throw new TauError(`no deployment of ${project}/${branch} was built from ${to}`, {
          status: 404,
          hint: `list deployments with: tau deployments ${project}`,
        });
      }
      return target;
    }
    const at = history.findIndex((r) => r.id === currentId);
    const target = history[at + 1];
    if (!target) throw new TauError(`${project}/${branch} has no deployment before the current one`, { status: 409 });
    return target;
  }

  async currentId(project: string, branch: string): Promise<string | null> {
    return (await this.#state.get<{ id: string }>(["tns", "current", project, branch]))?.id ?? null;
  }

  async current(
    project: string,
    branch = SERVED_BRANCH,
  ): Promise<{ ref: DeploymentRef; record: DeploymentRecord } | null> {
    const id = await this.currentId(project, branch);
    if (!id) return null;
    const ref = await this.#state.get<DeploymentRef>(["tns", "deploy", project, branch, id]);
    if (!ref) return null;
    return { ref, record: await this.record(ref.cid) };
  }

  /** The deployment every project currently serves (what should be running on this node). */
  async servedRecords(): Promise<DeploymentRecord[]> {
    const out: DeploymentRecord[] = [];
    for (const e of await this.#state.list<{ id: string }>(["tns", "current"])) {
      const [, , project, branch] = e.key;
      if (branch !== SERVED_BRANCH) continue;
      const current = await this.current(project, branch);
      if (current) out.push(current.record);
    }
    return out;
  }

  async record(cid: string): Promise<DeploymentRecord> {
    let record = this.#records.get(cid);
    if (!record) {
      record = JSON.parse(new TextDecoder().decode(await this.#store.cat(cid))) as DeploymentRecord;
      this.#records.set(cid, record);
    }
    return record;
  }

  /** Newest first. */
  async history(project: string, branch = SERVED_BRANCH): Promise<DeploymentRef[]> {
    const refs = await this.#state.list<DeploymentRef>(["tns", "deploy", project, branch], { reverse: true });
    return refs.map((e) => e.value);
  }

  async #claims(fqdn: string): Promise<{ active: boolean; project: string; since: [number, number, string] }[]> {
    const list = await this.#state.list<Claim>(["tns", "claim", fqdn.toLowerCase()]);
    return list.map((e) => ({ active: e.value.active, project: e.key[3], since: e.version }));
  }

  async resolveHost(fqdn: string): Promise<HostOwner | null> {
    const active = (await this.#claims(fqdn)).filter((c) => c.active);
    if (active.length === 0) return null;
    active.sort((a, b) => compareSince(a.since, b.since) || (a.project < b.project ? -1 : 1));
    return { project: active[0].project, branch: SERVED_BRANCH };
  }
}
