/**
 * Keeping the replicas of a store together, on every node that holds one (the nodes running tns for the control
 * state; another store names its own RPC service and the directory service whose nodes hold it, `service` and
 * `replicaService`: user data lives on the hoarder nodes, services/data/store.ts):
 * - a local write is pushed to every live replica at once, and the writer learns how many acknowledged it;
 * - anti-entropy: every SYNC_MS each replica compares its 256 bucket digests with a random live replica's and
 *   exchanges the entries of the buckets that differ, both ways. A node that was down, partitioned or new
 *   catches up within a few rounds, whatever it missed; pushes only make the common case fast.
 * The same RPC service answers reads and writes for nodes that hold no replica (RemoteStore, kvdb/mod.ts).
 *
 * Why not a kept library: @orbitdb/core works with helia 7 / libp2p 3 (platform-facts) but costs ~160 MiB per node,
 * puts each write through a Merkle log in Helia (16-19 ms a write, 41 ms p50 to be seen elsewhere), and needs
 * classic-level's native addon; the state here is small (deployment pointers, projects, jobs), so plain entries with
 * per-bucket digests do the same job in a few hundred lines, with one round trip per difference.
 */
import { TauError } from "../../runtime/errors.ts";
import type { ServiceName } from "../config/services.ts";
import type { Directory } from "../p2p/directory.ts";
import { type RpcClient, serveRpc } from "../p2p/rpc.ts";
import type { Libp2pNode } from "../p2p/node.ts";
import { BUCKETS, type Entry, type Key } from "./entries.ts";
import type { Kvdb } from "./store.ts";

import { KVDB_SERVICE } from "./mod.ts";
export { KVDB_SERVICE };
export const SYNC_MS = 3_000;
const PUSH_TIMEOUT_MS = 3_000;

export interface Replicator {
  /** Push entries to every live replica; resolves with how many acknowledged (not counting this one). */
  push(entries: Entry[]): Promise<number>;
  /** One anti-entropy round with `peer` (or a random live replica). Returns how many entries changed here. */
  syncOnce(peer?: string): Promise<number>;
  /** Live peers holding a replica, this node excluded. */
  replicas(): string[];
  stop(): void;
}

export interface RemoteRequest {
  get: { key: Key };
  list: { prefix: Key; reverse?: boolean; limit?: number };
  set: { key: Key; value: unknown };
  delete: { key: Key };
  getMany: { keys: Key[] };
  setMany: { items: { key: Key; value: unknown }[] };
}

export async function startReplicator(deps: {
  db: Kvdb;
  libp2p: Libp2pNode;
  rpc: RpcClient;
  directory: Directory;
  log?: (line: string) => void;
  /** The RPC service replicas (and nodes without one) call; default KVDB_SERVICE. */
  service?: string;
  /** The directory service whose nodes hold a replica; default "tns". */
  replicaService?: ServiceName;
}): Promise<Replicator> {
  const { db, rpc, directory } = deps;
  const service = deps.service ?? KVDB_SERVICE;
  const holders = deps.replicaService ?? "tns";
  const self = deps.libp2p.peerId.toString();
  const replicas = () => directory.peersFor(holders).map((e) => e.peer).filter((p) => p !== self);

  await serveRpc(deps.libp2p, service, async (req) => {
    const p = req.params as Record<string, unknown>;
    switch (req.method) {
      case "push":
        return { result: (await db.merge(p.entries as Entry[])).length };
      case "digests":
        return { result: db.digests() };
      case "buckets": {
        const got = await db.buckets(p.buckets as number[]);
        return { result: [...got.entries()] };
      }
      case "fingerprint":
        return { result: db.fingerprint() };
      // Reads and writes for nodes without a replica.
      case "get":
        return { result: (await db.getEntry(p.key as Key)) ?? null };
      case "list":
        return {
          result: await db.list(p.prefix as Key, { reverse: p.reverse as boolean, limit: p.limit as number }),
        };
      case "set": {
        const entry = await db.set(p.key as Key, p.value);
        await push([entry]);
        return { result: entry };
      }
      case "delete": {
        const entry = await db.delete(p.key as Key);
        await push([entry]);
        return { result: entry };
      }
      case "getMany":
        return { result: await Promise.all((p.keys as Key[]).map(async (k) => (await db.getEntry(k)) ?? null)) };
      case "setMany": {
        const entries = await db.setMany(p.items as { key: Key; value: unknown }[]);
        await push(entries);
        return { result: entries };
      }
      default:
        throw new TauError(`${service} has no method ${req.method}`, { status: 400 });
    }
  });

  async function push(entries: Entry[]): Promise<number> {
    if (entries.length === 0) return 0;
    const results = await Promise.allSettled(
      replicas().map((peer) => rpc.call(peer, service, "push", { entries }, { timeoutMs: PUSH_TIMEOUT_MS })),
    );
    return results.filter((r) => r.status === "fulfilled").length;
  }

  async function syncOnce(peer?: string): Promise<number> {
    const others = replicas();
    const target = peer ?? others[Math.floor(Math.random() * others.length)];
    if (!target) return 0;
    const theirs = (await rpc.call(target, service, "digests", null)).result as bigint[];
    const mine = db.digests();
    const differ: number[] = [];
    for (let b = 0; b < BUCKETS; b++) if (BigInt(theirs[b] ?? 0) !== mine[b]) differ.push(b);
    if (differ.length === 0) return 0;
    const [remote, local] = await Promise.all([
      rpc.call(target, service, "buckets", { buckets: differ }).then((r) => r.result as [number, Entry[]][]),
      db.buckets(differ),
    ]);
    const changed = await db.merge(remote.flatMap(([, entries]) => entries));
    // Send back what it lacks or holds older: it merges by the same rule, so sending every local entry of the
    // differing buckets is correct; it is also at most a few buckets' worth.
    const back = [...local.values()].flat();
    if (back.length) await rpc.call(target, service, "push", { entries: back });
    return changed.length;
  }

  // A replica that (re)appears gets a round at once: a node back from a partition converges in one round trip.
  const seen = new Set<string>();
  const offChange = directory.onChange((e) => {
    if (e.peer === self || !e.services.includes(holders)) return;
    if (!seen.has(e.peer)) {
      seen.add(e.peer);
      syncOnce(e.peer).catch((err) => deps.log?.(`${service}: sync with ${e.peer} failed: ${(err as Error).message}`));
    }
  });
  const forget = setInterval(() => {
    for (const peer of seen) if (!directory.get(peer)?.alive) seen.delete(peer);
  }, SYNC_MS);
  Deno.unrefTimer(forget);
  let syncing = false;
  const timer = setInterval(() => {
    if (syncing) return;
    syncing = true;
    syncOnce().catch((err) => deps.log?.(`${service}: anti-entropy round failed: ${(err as Error).message}`))
      .finally(() => (syncing = false));
  }, SYNC_MS);
  Deno.unrefTimer(timer);

  return {
    push,
    syncOnce,
    replicas,
    stop() {
      clearInterval(timer);
      clearInterval(forget);
      offChange();
    },
  };
}
