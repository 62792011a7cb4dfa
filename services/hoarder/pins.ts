/**
 * What is kept, and the bookkeeping of who keeps it, in the cloud's replicated store (services/kvdb):
 *   ["hoarder", "pins", project, branch, deployId] -> PinSet   what one deployment needs (written at its publish;
 *                                                              its build log is added when the job ends)
 *   ["hoarder", "copy", cid, peer]                 -> Copy     this node holds the whole DAG (each node writes its own)
 *   ["hoarder", "objects", cid, ...ref]            -> ObjectPin  content functions stored (a storage file version,
 *                                                              content add), one entry per reference, written in the
 *                                                              user-data store (services/data): the CID is wanted
 *                                                              while any entry under ["hoarder","objects",cid] lives
 * Kept: every branch's current deployment, and the last `keep` deployments of each branch's history (newest first,
 * whatever the pointer does), so a rollback within them is instant and a rollback is itself kept while it is current.
 * Everything else is released: its copies are dropped and its blocks swept.
 */
import type { StateStore } from "../kvdb/mod.ts";
import type { DeploymentRecord, DeploymentRef } from "../tns/records.ts";

export interface PinItem {
  cid: string;
  /** What it is, for people: "record", "function ping", "website site", "build log". */
  what: string;
}

export interface PinSet {
  items: PinItem[];
}

export interface Copy {
  at: number;
  blocks: number;
}

/** One reference to content a function stored; the deployment pins' counterpart for user data. */
export interface ObjectPin {
  /** For people: "storage app/files file a.txt v2". */
  what: string;
  project: string;
}

export const pinsKey = (project: string, branch: string, id: string) => ["hoarder", "pins", project, branch, id];
/**
 * A reference per entry, not a count per CID: two references are two keys, so writes from different nodes never
 * collide in the last-writer-wins store, and dropping the last one is just deleting it.
 */
export const objectPinKey = (cid: string, ...ref: string[]) => ["hoarder", "objects", cid, ...ref];
export const copyKey = (cid: string, peer: string) => ["hoarder", "copy", cid, peer];

const label = (r: { name: string; app?: string }) => (r.app ? `${r.app}/${r.name}` : r.name);

/** The content a deployment serves: its function modules and website trees (container images live elsewhere). */
export function contentOf(record: DeploymentRecord): PinItem[] {
  const items = new Map<string, PinItem>();
  for (const f of record.functions) items.set(f.cid, { cid: f.cid, what: `function ${label(f)}` });
  for (const w of record.websites) items.set(w.root, { cid: w.root, what: `website ${label(w)}` });
  return [...items.values()];
}

export function pinSetOf(ref: DeploymentRef, record: DeploymentRecord): PinSet {
  return { items: [{ cid: ref.cid, what: "record" }, ...contentOf(record).filter((i) => i.cid !== ref.cid)] };
}

/** Which deployments of one branch are kept: the current one and the newest `keep` of its history. */
export function keptIds(historyNewestFirst: string[], currentId: string | null, keep: number): string[] {
  const ids = new Set(historyNewestFirst.slice(0, keep));
  if (currentId) ids.add(currentId);
  return [...ids];
}

export interface Wanted extends PinItem {
  project: string;
  /** "" for content only functions' data needs (object pins). */
  branch: string;
  /** The kept deployments that need it (a module or site unchanged between pushes is shared). */
  deployments: string[];
}

/**
 * Every CID some kept deployment needs, and every CID functions stored (object pins, read from `objects`: the
 * user-data store, which on a cloud is replicated on the hoarder nodes; by default `state` itself). `complete` is
 * false when a deployment's pins could not be read (its record was unreachable): the caller must then release
 * nothing, since it does not know everything that is wanted.
 */
export async function wantedCids(
  state: StateStore,
  keep: number,
  readRecord: (cid: string) => Promise<DeploymentRecord>,
  objects: StateStore = state,
): Promise<{ wanted: Map<string, Wanted>; complete: boolean; problems: string[] }> {
  const wanted = new Map<string, Wanted>();
  const problems: string[] = [];
  for (const cur of await state.list<{ id: string }>(["tns", "current"])) {
    const [, , project, branch] = cur.key;
    // (limit 0 would mean "no limit" to the store)
    const refs = keep > 0
      ? await state.list<DeploymentRef>(["tns", "deploy", project, branch], { reverse: true, limit: keep })
      : [];
    const ids = keptIds(refs.map((r) => r.value.id), cur.value.id, keep);
    for (const id of ids) {
      let pins = await state.get<PinSet>(pinsKey(project, branch, id));
      if (!pins) {
        // Deployed before hoarder kept pin sets (or on a cloud without it): the record says what it needs.
        const ref = refs.find((r) => r.value.id === id)?.value ??
          await state.get<DeploymentRef>(["tns", "deploy", project, branch, id]);
        if (!ref) continue;
        try {
          pins = pinSetOf(ref, await readRecord(ref.cid));
        } catch (err) {
          problems.push(`${project}/${branch} ${id}: ${(err as Error).message}`);
          pins = { items: [{ cid: ref.cid, what: "record" }] };
        }
      }
      for (const item of pins.items) {
        const known = wanted.get(item.cid);
        if (known) known.deployments.push(id);
        else wanted.set(item.cid, { ...item, project, branch, deployments: [id] });
      }
    }
  }
  for (const e of await objects.list<ObjectPin>(["hoarder", "objects"])) {
    const cid = e.key[2];
    if (!wanted.has(cid)) {
      wanted.set(cid, { cid, what: e.value.what, project: e.value.project, branch: "", deployments: [] });
    }
  }
  return { wanted, complete: problems.length === 0, problems };
}

/** Who holds what, as the replicated store says: cid -> peers. */
export async function listCopies(state: StateStore): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const e of await state.list<Copy>(["hoarder", "copy"])) {
    const [, , cid, peer] = e.key;
    const set = out.get(cid) ?? new Set<string>();
    set.add(peer);
    out.set(cid, set);
  }
  return out;
}
