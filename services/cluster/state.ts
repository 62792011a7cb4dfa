/**
 * Which view of the replicated store this node's services get, and how nodes without a replica hear of changes.
 * - A node running tns holds a replica (kvdb/store.ts) kept in step with the others (kvdb/replicate.ts); every
 *   change it applies to a TNS key (its own writes and merged ones) is announced on the cloud's TNS events topic.
 * - Any other node reads and writes through a tns node (kvdb RemoteStore). It learns of changes from those events and,
 *   in case it missed one (it was partitioned, or joined late), compares the store's fingerprint every
 *   VERSION_CHECK_MS and drops everything it cached when it moved. So a cache is at most VERSION_CHECK_MS stale.
 */
import { decode, encode } from "cborg";
import type { Cluster } from "./cluster.ts";
import { type Entry, RemoteStore, ReplicaStore, type StateStore } from "../kvdb/mod.ts";
import { startReplicator } from "../kvdb/replicate.ts";
import type { Kvdb } from "../kvdb/store.ts";

export const VERSION_CHECK_MS = 5_000;
/** A change event that stands for "anything may have changed": listeners drop everything. */
export const EVERYTHING: Entry = { key: ["*"], t: 0, c: 0, w: "" };

export async function clusterState(
  cluster: Cluster,
  db: Kvdb,
  log: (line: string) => void,
): Promise<{ state: StateStore; stop(): void }> {
  const pubsub = cluster.p2p.libp2p.services.pubsub;
  const topic = `/tau/${cluster.config.cloud}/tns/events/1`;
  if (cluster.config.services.includes("tns")) {
    const state = new ReplicaStore(db);
    const replicator = await startReplicator({
      db,
      libp2p: cluster.p2p.libp2p,
      rpc: cluster.rpc,
      directory: cluster.directory,
      log,
    });
    state.attach(replicator);
    const off = db.onChange((entries) => {
      const keys = entries.filter((e) => e.key[0] === "tns").map((e) => e.key);
      if (keys.length) pubsub.publish(topic, encode({ keys })).catch(() => {});
    });
    return {
      state,
      stop() {
        off();
        replicator.stop();
      },
    };
  }
  const remote = new RemoteStore(cluster.rpc, cluster.directory);
  const listeners = new Set<(entries: Entry[]) => void>();
  const emit = (entries: Entry[]) => {
    for (const l of listeners) {
      try {
        l(entries);
      } catch { /* a listener's failure is its own */ }
    }
  };
  remote.onChange(emit);
  const onMessage = (evt: CustomEvent<{ topic: string; data: Uint8Array }>) => {
    if (evt.detail.topic !== topic) return;
    try {
      const { keys } = decode(evt.detail.data) as { keys: string[][] };
      emit(keys.map((key) => ({ key, t: 0, c: 0, w: "" })));
    } catch { /* not ours */ }
  };
  pubsub.subscribe(topic);
  pubsub.addEventListener("message", onMessage);
  let last: bigint | undefined;
  const timer = setInterval(async () => {
    try {
      const now = await remote.fingerprint();
      if (last !== undefined && now !== last) emit([EVERYTHING]);
      last = now;
    } catch (err) {
      log(`tns: version check failed: ${(err as Error).message}`);
    }
  }, VERSION_CHECK_MS);
  Deno.unrefTimer(timer);
  const state: StateStore = {
    get: (key) => remote.get(key),
    getEntry: (key) => remote.getEntry(key),
    list: (prefix, opts) => remote.list(prefix, opts),
    set: (key, value) => remote.set(key, value),
    delete: (key) => remote.delete(key),
    getMany: (keys) => remote.getMany(keys),
    setMany: (items) => remote.setMany(items),
    update: (keys, compute) => remote.update(keys, compute),
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    fingerprint: () => remote.fingerprint(),
  };
  return {
    state,
    stop() {
      clearInterval(timer);
      pubsub.removeEventListener("message", onMessage);
    },
  };
}
