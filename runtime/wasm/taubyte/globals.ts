/**
 * Globals (Taubyte's `globals` package): named values shared by the functions of a project, of one application
 * (`application` = 1) or kept by one function (`function` = 1). Host operations (JSPI, executors only).
 */
import { type AsyncCalls, Errno, failed, type GuestAccess, type TaubyteCall, withinDeadline } from "./abi.ts";
import { type GlobalScope, HostError } from "../host/services.ts";

const MAX_NAME_BYTES = 1024;

export function globalsCalls(g: GuestAccess, current: () => TaubyteCall): { async: AsyncCalls; effects: string[] } {
  const ops = () => {
    const o = current().host.globals;
    if (!o) throw new HostError("unbound", "this function's node keeps no globals");
    return o;
  };
  const args = (namePtr: number, nameLen: number, app: number, fn: number) => {
    const name = nameLen > MAX_NAME_BYTES ? null : g.text(namePtr, nameLen);
    return name === null ? null : { name, scope: { application: app !== 0, function: fn !== 0 } as GlobalScope };
  };
  const key = (a: { name: string; scope: GlobalScope }) =>
    `global\0${a.name}\0${+a.scope.application}${+a.scope.function}`;
  /** The value, fetched once per event for the size-then-read pair; `create` stores an empty one when missing. */
  const value = async (c: TaubyteCall, a: { name: string; scope: GlobalScope }, create: boolean) => {
    let v = c.event.cache.get(key(a)) ?? await withinDeadline(ops().get(a.name, a.scope));
    if (v === null && create) {
      v = new Uint8Array(0);
      await withinDeadline(ops().put(a.name, a.scope, v));
    }
    if (v !== null) c.event.cache.set(key(a), v);
    return v;
  };
  const size =
    (create: boolean) => async (namePtr: number, nameLen: number, app: number, fn: number, sizePtr: number) => {
      const c = current();
      const a = args(namePtr, nameLen, app, fn);
      if (!a) return Errno.addressOutOfMemory;
      try {
        const v = await value(c, a, create);
        return v === null ? Errno.databaseKeyNotFound : g.writeU32(sizePtr, v.length);
      } catch (err) {
        return failed(c, err, Errno.databaseGetFailed);
      }
    };
  return {
    // getOrCreate writes when the value is missing: an effect like a put.
    effects: ["putGlobalValue", "getOrCreateGlobalValueSize"],
    async: {
      getGlobalValueSize: size(false),
      getOrCreateGlobalValueSize: size(true),
      async getGlobalValue(namePtr, nameLen, app, fn, valuePtr) {
        const c = current();
        const a = args(namePtr, nameLen, app, fn);
        if (!a) return Errno.addressOutOfMemory;
        try {
          const v = await value(c, a, false);
          return v === null ? Errno.databaseKeyNotFound : g.writeOut(v, valuePtr);
        } catch (err) {
          return failed(c, err, Errno.databaseGetFailed);
        }
      },
      async putGlobalValue(namePtr, nameLen, app, fn, valuePtr, valueLen, _valueCap) {
        const c = current();
        const a = args(namePtr, nameLen, app, fn);
        const data = g.bytes(valuePtr, valueLen);
        if (!a || !data) return Errno.addressOutOfMemory;
        try {
          await withinDeadline(ops().put(a.name, a.scope, data));
          c.event.cache.set(key(a), data);
          return Errno.none;
        } catch (err) {
          return failed(c, err, Errno.databasePutFailed);
        }
      },
    },
  };
}
