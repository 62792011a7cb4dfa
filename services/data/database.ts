/**
 * Key-value databases: each database name a function opens is a set of entries in the user-data store (records.ts
 * has the layout), with a counter of the bytes it holds (key length + value length per entry) that `storage.size`
 * limits. Values stay bytes end to end: Deno KV and the CBOR framing of kvdb's replication and RemoteStore (cborg)
 * both keep a Uint8Array as a byte string, so nothing is base64'd.
 */
import { type DatabaseOps, HostError } from "../../runtime/wasm/host/services.ts";
import type { Key, StateStore } from "../kvdb/mod.ts";
import type { Resolved } from "./bindings.ts";
import { asBytes, checkKey, checkValue, formatBytes, utf8Length } from "./limits.ts";
import { type DatabaseBinding, dbEntryKey, dbPrefix, dbSizeKey, type Usage } from "./records.ts";
import { serialised } from "./serial.ts";

export function databaseOps(store: StateStore, resolve: (name: string) => Resolved<DatabaseBinding>): DatabaseOps {
  const keyOf = (db: string, key: string) => checkKey(`key in database "${db}"`, key);

  return {
    open(db) {
      resolve(db);
      return Promise.resolve();
    },

    async get(db, key) {
      const { place } = resolve(db);
      return asBytes(await store.get(dbEntryKey(place, keyOf(db, key))));
    },

    put(db, key, value) {
      const { binding, place } = resolve(db);
      keyOf(db, key);
      const bytes = checkValue(`value for key "${key.slice(0, 60)}" in database "${db}"`, value);
      // Serialised per database name (serial.ts says why), and on a replica one read-compute-write step: the
      // counter and the old entry read together, the entry and its new count written in one transaction.
      return serialised(
        store,
        dbSizeKey(place),
        () =>
          store.update([dbSizeKey(place), dbEntryKey(place, key)], ([usage, old]) => {
            const used = (usage as Usage | undefined)?.bytes ?? 0;
            const keyBytes = utf8Length(key);
            const oldBytes = old === undefined ? 0 : keyBytes + (asBytes(old)?.length ?? 0);
            const next = used - oldBytes + keyBytes + bytes.length;
            // A put that does not grow the database is allowed even over the limit (storage.size lowered since).
            if (next > binding.sizeBytes && next > used) {
              throw new HostError(
                "too-large",
                `database "${db}" would hold ${next} bytes with this put, over its storage.size of ` +
                  `${binding.sizeBytes} bytes (${formatBytes(binding.sizeBytes)}); ${used} are used`,
              );
            }
            const writes: { key: Key; value: unknown }[] = [{ key: dbEntryKey(place, key), value: bytes }];
            if (next !== used) writes.push({ key: dbSizeKey(place), value: { bytes: next } satisfies Usage });
            return { writes, result: undefined };
          }),
      );
    },

    delete(db, key) {
      const { place } = resolve(db);
      keyOf(db, key);
      return serialised(store, dbSizeKey(place), async () => {
        const old = await store.get(dbEntryKey(place, key));
        // Deleting what is not there is done already (and writes no tombstone).
        if (old === undefined) return;
        await store.delete(dbEntryKey(place, key));
        const usage = await store.get<Usage>(dbSizeKey(place));
        const freed = utf8Length(key) + (asBytes(old)?.length ?? 0);
        await store.set(dbSizeKey(place), { bytes: Math.max(0, (usage?.bytes ?? 0) - freed) } satisfies Usage);
      });
    },

    async list(db, prefix) {
      const { place } = resolve(db);
      if (typeof prefix !== "string") throw new HostError("invalid", `a key prefix in database "${db}" must be text`);
      // The store lists by whole key parts, so a string prefix is a filter over the database's entries.
      const depth = dbPrefix(place).length;
      const keys: string[] = [];
      for (const e of await store.list(dbPrefix(place))) {
        const key = e.key[depth];
        if (e.key.length === depth + 1 && key.startsWith(prefix)) keys.push(key);
      }
      return keys.sort();
    },
  };
}
