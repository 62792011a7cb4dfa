/**
 * One read-modify-write at a time per key, inside this process. A database's or storage's size counter is read,
 * adjusted and written back around each change; two parallel requests doing that at once would both read the same
 * count and one change would be lost. Chaining every change of one database (one storage) behind the previous one
 * keeps the counter exact on this node; other names run in parallel.
 *
 * Across nodes this is not a lock: two nodes changing the same database at the same moment each write their own
 * count and the later write wins (kvdb is last-writer-wins per key), so the counter can drift by what the other
 * node changed. That is accepted: a function's requests for one project mostly land on the same few nodes, the
 * error is bounded by what was written in one replication round trip, and a storage recounts from its files before
 * it refuses an add (storage.ts), so a drift never refuses what fits for long. A cloud-wide lock would put a network
 * round trip to one coordinator in front of every put.
 */
import { type Key, keyString } from "../kvdb/entries.ts";

const chains = new WeakMap<object, Map<string, Promise<unknown>>>();

/** Run `fn` after every earlier `serialised` call for the same store and key has settled. */
export function serialised<T>(store: object, key: Key, fn: () => Promise<T>): Promise<T> {
  let byKey = chains.get(store);
  if (!byKey) chains.set(store, byKey = new Map());
  const k = keyString(key);
  const run = (byKey.get(k) ?? Promise.resolve()).then(fn);
  const tail = run.then(() => {}, () => {});
  byKey.set(k, tail);
  // The map holds only chains still running: a quiet database costs nothing.
  tail.then(() => {
    if (byKey.get(k) === tail) byKey.delete(k);
  });
  return run;
}
