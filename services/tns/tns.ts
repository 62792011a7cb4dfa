/**
 * TNS, the name system: which deployment each project branch currently serves, and which project owns each host.
 *
 * Keys (Deno KV, prefix "tns"):
 *   ["tns", "deploy", project, branch, deployId] -> DeploymentRef   immutable once written
 *   ["tns", "current", project, branch]          -> deployId         the only mutable pointer per branch
 *   ["tns", "host", reversedFqdn]                -> { project, branch }
 * A publish or rollback is one atomic KV commit that moves `current` and the host entries together, guarded by a
 * versionstamp check, so concurrent builds can never leave a half-deployed project.
 */
import { TauError } from "../../runtime/errors.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import { type DeploymentRecord, type DeploymentRef, fqdnsOf, reverseFqdn } from "./records.ts";

/** Only this branch is served on the project's domains; other branches get records and pointers (previews later). */
export const SERVED_BRANCH = "main";

export interface HostOwner {
  project: string;
  branch: string;
}

/**
 * Readies what a deployment needs to run (its containers) before the pointer moves to it; the returned function
 * is called once the flip is done or has failed.
 */
export type Preparer = (record: DeploymentRecord, log?: (line: string) => void) => Promise<() => void>;

export class Tns {
  #kv: Deno.Kv;
  #store: ContentStore;
  #records = new Map<string, DeploymentRecord>(); // by CID: records never change
  #listeners = new Set<(project: string, branch: string) => void>();
  #seq = 0;
  #prepare: Preparer = () => Promise.resolve(() => {});

  constructor(kv: Deno.Kv, store: ContentStore) {
    this.#kv = kv;
    this.#store = store;
  }

  /** Called after every pointer flip (publish or rollback): caches in front of TNS drop what they hold. */
  onFlip(listener: (project: string, branch: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  setPreparer(prepare: Preparer): void {
    this.#prepare = prepare;
  }

  /** Only the served branch runs anything; other branches are recorded, not started. */
  async #prepared(record: DeploymentRecord, log?: (line: string) => void): Promise<() => void> {
    return record.branch === SERVED_BRANCH ? await this.#prepare(record, log) : () => {};
  }

  async publish(record: DeploymentRecord, log?: (line: string) => void): Promise<DeploymentRef> {
    const bytes = new TextEncoder().encode(JSON.stringify(record));
    const cid = await this.#store.addBytes(bytes);
    this.#records.set(cid, record);
    const id = `${Date.now().toString().padStart(14, "0")}-${(this.#seq++ % 1000).toString().padStart(3, "0")}`;
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
    const release = await this.#prepared(record, log);
    try {
      await this.#flip(record.project, record.branch, ref, true);
    } finally {
      release();
    }
    return ref;
  }

  /** Point the branch back at an earlier deployment: the previous one, or the one built from `to` (commit prefix). */
  async rollback(project: string, branch: string, to?: string): Promise<DeploymentRef> {
    const history = await this.history(project, branch);
    const currentId = await this.currentId(project, branch);
    if (!currentId) throw new TauError(`project ${project} has no deployment on branch ${branch}`, { status: 404 });
    let target: DeploymentRef | undefined;
    if (to) {
      target = history.find((r) =>
        [r.commit, r.configCommit, r.codeCommit].some((c) => c && c.startsWith(to)) || r.id === to || r.cid === to
      );
      if (!target) {
        throw new TauError(`no deployment of ${project}/${branch} was built from ${to}`, {
          status: 404,
          hint: `list deployments with: tau deployments ${project}`,
        });
      }
    } else {
      const at = history.findIndex((r) => r.id === currentId);
      target = history[at + 1];
      if (!target) {
        throw new TauError(`${project}/${branch} has no deployment before the current one`, { status: 409 });
      }
    }
    const release = await this.#prepared(await this.record(target.cid));
    try {
      await this.#flip(project, branch, target, false);
    } finally {
      release();
    }
    return target;
  }

  async #flip(project: string, branch: string, ref: DeploymentRef, isNew: boolean): Promise<void> {
    const served = branch === SERVED_BRANCH;
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await this.#kv.get<string>(["tns", "current", project, branch]);
      const previous = current.value
        ? (await this.#kv.get<DeploymentRef>(["tns", "deploy", project, branch, current.value])).value
        : null;
      const op = this.#kv.atomic().check(current);
      if (isNew) op.set(["tns", "deploy", project, branch, ref.id], ref);
      op.set(["tns", "current", project, branch], ref.id);
      if (served) {
        const hostEntries = await Promise.all(
          ref.fqdns.map((f) => this.#kv.get<HostOwner>(["tns", "host", reverseFqdn(f)])),
        );
        for (let i = 0; i < ref.fqdns.length; i++) {
          const owner = hostEntries[i].value;
          if (owner && owner.project !== project) {
            throw new TauError(`domain ${ref.fqdns[i]} is already served by project ${owner.project}`, {
              hint: "use another fqdn, or remove the domain from the other project first",
              status: 409,
            });
          }
          op.check(hostEntries[i]);
          op.set(["tns", "host", reverseFqdn(ref.fqdns[i])], { project, branch });
        }
        for (const old of previous?.fqdns ?? []) {
          if (!ref.fqdns.includes(old)) op.delete(["tns", "host", reverseFqdn(old)]);
        }
      }
      if ((await op.commit()).ok) {
        for (const l of this.#listeners) l(project, branch);
        return;
      }
    }
    throw new TauError(`could not update ${project}/${branch}: too many concurrent deploys`, { status: 503 });
  }

  async currentId(project: string, branch: string): Promise<string | null> {
    return (await this.#kv.get<string>(["tns", "current", project, branch])).value;
  }

  async current(
    project: string,
    branch = SERVED_BRANCH,
  ): Promise<{ ref: DeploymentRef; record: DeploymentRecord } | null> {
    const id = await this.currentId(project, branch);
    if (!id) return null;
    const ref = (await this.#kv.get<DeploymentRef>(["tns", "deploy", project, branch, id])).value;
    if (!ref) return null;
    return { ref, record: await this.record(ref.cid) };
  }

  /** The deployment every project currently serves (what should be running on this node). */
  async servedRecords(): Promise<DeploymentRecord[]> {
    const out: DeploymentRecord[] = [];
    for await (const e of this.#kv.list<string>({ prefix: ["tns", "current"] })) {
      const [, , project, branch] = e.key as string[];
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
    const out: DeploymentRef[] = [];
    for await (
      const e of this.#kv.list<DeploymentRef>({ prefix: ["tns", "deploy", project, branch] }, { reverse: true })
    ) {
      out.push(e.value);
    }
    return out;
  }

  async resolveHost(fqdn: string): Promise<HostOwner | null> {
    return (await this.#kv.get<HostOwner>(["tns", "host", reverseFqdn(fqdn)])).value;
  }
}
