/**
 * Database calls (Taubyte's `database` package): key-value databases the function opens by name, resolved against
 * the databases its project binds (host/services.ts DatabaseOps). Asynchronous on the host: they run only on
 * executors, suspended through JSPI while the store answers (engine.ts).
 */
import {
  type AsyncCalls,
  Errno,
  failed,
  fetchOnce,
  type GuestAccess,
  NameIds,
  nulList,
  type SyncCalls,
  type TaubyteCall,
  withinDeadline,
} from "./abi.ts";
import { HostError } from "../host/services.ts";

/** Longest key accepted from a guest before decoding it (the store refuses longer ones anyway). */
const MAX_KEY_BYTES = 4096;

export function databaseCalls(g: GuestAccess, current: () => TaubyteCall) {
  const open = new NameIds();
  const ops = () => {
    const db = current().host.database;
    if (!db) throw new HostError("unbound", "this function's node serves no databases");
    return db;
  };
  /** The database an id names and the key the guest passes, or the errno that answers the call. */
  const target = (id: number, keyPtr: number, keyLen: number): { name: string; key: string } | number => {
    const name = open.get(id);
    if (name === undefined) return Errno.databaseNotFound;
    if (keyLen > MAX_KEY_BYTES) return Errno.databaseKeyNotFound;
    const key = g.text(keyPtr, keyLen);
    return key === null ? Errno.addressOutOfMemory : { name, key };
  };
  const value = (c: TaubyteCall, t: { name: string; key: string }) =>
    fetchOnce(c, `db\0${t.name}\0${t.key}`, () => ops().get(t.name, t.key));
  const keys = (c: TaubyteCall, t: { name: string; key: string }) =>
    fetchOnce(c, `dblist\0${t.name}\0${t.key}`, async () => nulList(await ops().list(t.name, t.key)));

  const asyncCalls: AsyncCalls = {
    async newDatabase(namePtr: number, nameLen: number, idPtr: number) {
      const c = current();
      const name = g.text(namePtr, nameLen);
      if (name === null) return Errno.addressOutOfMemory;
      try {
        await withinDeadline(ops().open(name));
      } catch (err) {
        return failed(c, err, Errno.databaseCreateFailed);
      }
      const id = open.add(name);
      return id === undefined ? Errno.databaseCreateFailed : g.writeU32(idPtr, id);
    },
    async databaseGetSize(id: number, keyPtr: number, keyLen: number, sizePtr: number) {
      const c = current();
      const t = target(id, keyPtr, keyLen);
      if (typeof t === "number") return t;
      try {
        const v = await value(c, t);
        return v === null ? Errno.databaseKeyNotFound : g.writeU32(sizePtr, v.length);
      } catch (err) {
        return failed(c, err, Errno.databaseGetFailed);
      }
    },
    async databaseGet(id: number, keyPtr: number, keyLen: number, dataPtr: number) {
      const c = current();
      const t = target(id, keyPtr, keyLen);
      if (typeof t === "number") return t;
      try {
        const v = await value(c, t);
        return v === null ? Errno.databaseKeyNotFound : g.writeOut(v, dataPtr);
      } catch (err) {
        return failed(c, err, Errno.databaseGetFailed);
      }
    },
    async databasePut(id: number, keyPtr: number, keyLen: number, dataPtr: number, dataSize: number) {
      const c = current();
      const t = target(id, keyPtr, keyLen);
      if (typeof t === "number") return t;
      const data = g.bytes(dataPtr, dataSize);
      if (!data) return Errno.addressOutOfMemory;
      try {
        await withinDeadline(ops().put(t.name, t.key, data));
        c.event.cache.clear(); // values and listings read earlier in this event are stale now
        return Errno.none;
      } catch (err) {
        return failed(c, err, Errno.databasePutFailed);
      }
    },
    async databaseDelete(id: number, keyPtr: number, keyLen: number) {
      const c = current();
      const t = target(id, keyPtr, keyLen);
      if (typeof t === "number") return t;
      try {
        await withinDeadline(ops().delete(t.name, t.key));
        c.event.cache.clear(); // values and listings read earlier in this event are stale now
        return Errno.none;
      } catch (err) {
        return failed(c, err, Errno.databaseDeleteFailed);
      }
    },
    async databaseListSize(id: number, prefixPtr: number, prefixLen: number, sizePtr: number) {
      const c = current();
      const t = target(id, prefixPtr, prefixLen);
      if (typeof t === "number") return t;
      try {
        return g.writeU32(sizePtr, (await keys(c, t))!.length);
      } catch (err) {
        return failed(c, err, Errno.databaseListFailed);
      }
    },
    async databaseList(id: number, prefixPtr: number, prefixLen: number, dataPtr: number) {
      const c = current();
      const t = target(id, prefixPtr, prefixLen);
      if (typeof t === "number") return t;
      try {
        return g.writeOut((await keys(c, t))!, dataPtr);
      } catch (err) {
        return failed(c, err, Errno.databaseListFailed);
      }
    },
  };
  const syncCalls: SyncCalls = {
    databaseClose: (id: number) => (open.has(id) ? Errno.none : Errno.databaseNotFound),
  };
  return { sync: syncCalls, async: asyncCalls, effects: ["databasePut", "databaseDelete"] };
}
