/**
 * Project secrets (tau's own extension of `taubyte/sdk`; Taubyte has no such call). One call does it:
 *   tauSecretGet(namePtr, nameLen, bufPtr, bufSize, sizePtr) -> errno
 * writes the value's size (u32) at sizePtr and, when bufSize is large enough, the value at bufPtr (answering 0);
 * with a smaller buffer it answers bufferTooSmall after writing the size, so a guest that does not know the size
 * asks with bufSize 0, then again with a buffer that size. A secret the function's config does not list, or one
 * nobody set, answers its own errno, and the function's log says why and what to run. A read: no effect, so it
 * may run inline.
 */
import { type AsyncCalls, Errno, failed, type GuestAccess, type TaubyteCall, withinDeadline } from "./abi.ts";
import { HostError } from "../host/services.ts";

/** tau's errnos, above Taubyte's range (its list ends near 125). */
export const SecretErrno = { notSet: 1000, notListed: 1001 } as const;

const MAX_NAME_BYTES = 256;

export function secretsCalls(g: GuestAccess, current: () => TaubyteCall): { async: AsyncCalls } {
  return {
    async: {
      async tauSecretGet(namePtr, nameLen, bufPtr, bufSize, sizePtr) {
        const c = current();
        const name = nameLen > MAX_NAME_BYTES ? null : g.text(namePtr, nameLen);
        if (name === null) return Errno.addressOutOfMemory;
        const ops = c.host.secrets;
        if (!ops) return failed(c, new HostError("unbound", "this node keeps no secrets"), SecretErrno.notListed);
        // Cached for the event: the size-then-value pair asks the store once. Never logged.
        const key = `secret\0${name}`;
        let value = c.event.cache.get(key);
        if (!value) {
          try {
            value = await withinDeadline(ops.get(name));
          } catch (err) {
            const code = err instanceof HostError && err.code === "not-found"
              ? SecretErrno.notSet
              : SecretErrno.notListed;
            return failed(c, err, code);
          }
          c.event.cache.set(key, value);
        }
        const sized = g.writeU32(sizePtr, value.length);
        if (sized !== Errno.none) return sized;
        return bufSize < value.length ? Errno.bufferTooSmall : g.writeOut(value, bufPtr, bufSize);
      },
    },
  };
}
