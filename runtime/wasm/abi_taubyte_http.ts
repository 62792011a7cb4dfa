/**
 * Taubyte's host ABI, HTTP event part: the imports of module `taubyte/sdk` that a function built with Taubyte's Go
 * (TinyGo) or Rust SDK calls to read its request and write its answer. Signatures and error numbers follow Taubyte's
 * go-sdk-symbols and go-sdk errno (facts, not code, taken from them); docs/abi.md lists each call.
 *
 * The calling convention: the function's export takes the event id (u32). Strings go in as (ptr, len); values come
 * out in two steps, a `...Size` call writing the length (u32 little-endian) and a call copying the bytes into the
 * guest's buffer. Lists (query and header names) are each name followed by a NUL byte. Every call answers an errno:
 * 0 is success; a pointer outside the guest's memory is ErrorAddressOutOfMemory, never a trap of the host.
 */
import type { GuestMemory, SdkCall } from "./abi_sdk.ts";
import { MAX_RESPONSE_BYTES, OutputTooLarge } from "./outcome.ts";

export const TAUBYTE_MODULE = "taubyte/sdk";

/** Taubyte's errno values used here (go-sdk errno: iota order). */
export const Errno = {
  none: 0,
  eventNotFound: 1,
  bufferTooSmall: 2,
  addressOutOfMemory: 3,
  eof: 8,
  headerNotFound: 16,
} as const;

/** Taubyte's event types (go-sdk common: EventTypeUndefined = 0, EventTypeHttp = 1). */
const EVENT_TYPE_HTTP = 1;

const encoder = new TextEncoder();

/** Longer keys cannot be a query or header name: answered absent without decoding them. */
const MAX_KEY_BYTES = 8192;

/** What one Taubyte-ABI call needs beside SdkCall: its event id and how far the body was read. */
export class TaubyteEvent {
  bodyRead = 0;
  bodyClosed = false;
  /** Request values already encoded for this event (a guest asks for the size, then the bytes). */
  readonly cache = new Map<string, Uint8Array>();
  constructor(readonly id: number) {}
}

/** The imports, reading the call returned by `current()` (a warm instance serves one call at a time). */
export function taubyteHttpImports(
  mem: GuestMemory,
  current: () => { call: SdkCall; event: TaubyteEvent },
): Record<string, (...a: never[]) => number> {
  // Arguments arrive unsigned (see `unsigned` below), so a bound check is one comparison.
  const view = (ptr: number, len: number): Uint8Array | null => {
    const buf = mem.memory!.buffer;
    return ptr + len <= buf.byteLength ? new Uint8Array(buf, ptr, len) : null;
  };
  // One DataView per memory buffer (memory.grow replaces the buffer): a u32 write allocates nothing.
  let words: DataView | undefined;
  const writeU32 = (ptr: number, value: number): number => {
    const buf = mem.memory!.buffer;
    if (ptr + 4 > buf.byteLength) return Errno.addressOutOfMemory;
    if (words?.buffer !== buf) words = new DataView(buf);
    words.setUint32(ptr, value, true);
    return Errno.none;
  };
  const text = (ptr: number, len: number): string | null => view(ptr, len) ? mem.string(ptr, len) : null;
  /** The call for `eventId`, or undefined when the guest names another event. */
  const event = (eventId: number) => {
    const c = current();
    return c.event.id === eventId ? c : undefined;
  };
  /** A value in two calls: its size, then its bytes into a buffer that must be large enough. */
  const sized = (what: string, compute: (c: { call: SdkCall }) => Uint8Array) => {
    const value = (c: { call: SdkCall; event: TaubyteEvent }) => {
      let v = c.event.cache.get(what);
      if (!v) c.event.cache.set(what, v = compute(c));
      return v;
    };
    return {
      size(eventId: number, sizePtr: number): number {
        const c = event(eventId);
        return c ? writeU32(sizePtr, value(c).length) : Errno.eventNotFound;
      },
      read(eventId: number, bufPtr: number, bufSize: number): number {
        const c = event(eventId);
        if (!c) return Errno.eventNotFound;
        const bytes = value(c);
        if (bufSize < bytes.length) return Errno.bufferTooSmall;
        if (!view(bufPtr, bytes.length)) return Errno.addressOutOfMemory;
        mem.copyOut(bytes, bufPtr, bytes.length);
        return Errno.none;
      },
    };
  };
  /** A value looked up by a key the guest passes (query value, header value). */
  const byKey = (lookup: (c: { call: SdkCall }, key: string) => string | null) => {
    const find = (eventId: number, keyPtr: number, keyLen: number): Uint8Array | number => {
      const c = event(eventId);
      if (!c) return Errno.eventNotFound;
      if (keyLen > MAX_KEY_BYTES) return encoder.encode("");
      const key = text(keyPtr, keyLen);
      if (key === null) return Errno.addressOutOfMemory;
      return encoder.encode(lookup(c, key) ?? "");
    };
    return {
      size(eventId: number, sizePtr: number, keyPtr: number, keyLen: number): number {
        const v = find(eventId, keyPtr, keyLen);
        return typeof v === "number" ? v : writeU32(sizePtr, v.length);
      },
      read(eventId: number, keyPtr: number, keyLen: number, bufPtr: number, bufSize: number): number {
        const v = find(eventId, keyPtr, keyLen);
        if (typeof v === "number") return v;
        if (bufSize < v.length) return Errno.bufferTooSmall;
        if (!view(bufPtr, v.length)) return Errno.addressOutOfMemory;
        mem.copyOut(v, bufPtr, v.length);
        return Errno.none;
      },
    };
  };
  const nulList = (names: string[]) => encoder.encode(names.map((n) => `${n}\0`).join(""));
  const queryOf = (c: { call: SdkCall }) => new URLSearchParams(c.call.input.query);
  const method = sized("method", (c) => encoder.encode(c.call.input.method));
  const host = sized("host", (c) => encoder.encode(c.call.input.headers.get("host") ?? ""));
  const path = sized("path", (c) => encoder.encode(c.call.input.path));
  const agent = sized("agent", (c) => encoder.encode(c.call.input.headers.get("user-agent") ?? ""));
  const queryKeys = sized("queryKeys", (c) => nulList([...new Set(queryOf(c).keys())]));
  const headerKeys = sized("headerKeys", (c) => nulList([...c.call.input.headers.keys()]));
  const query = byKey((c, key) => queryOf(c).get(key));
  const header = byKey((c, key) => {
    try {
      return c.call.input.headers.get(key);
    } catch {
      return null; // not a valid header name: it cannot be present
    }
  });
  return unsigned({
    getEventType(eventId: number, typePtr: number): number {
      return event(eventId) ? writeU32(typePtr, EVENT_TYPE_HTTP) : Errno.eventNotFound;
    },
    getHttpEventMethodSize: method.size,
    getHttpEventMethod: method.read,
    getHttpEventHostSize: host.size,
    getHttpEventHost: host.read,
    getHttpEventPathSize: path.size,
    getHttpEventPath: path.read,
    getHttpEventUserAgentSize: agent.size,
    getHttpEventUserAgent: agent.read,
    getHttpEventRequestQueryKeysSize: queryKeys.size,
    getHttpEventRequestQueryKeys: (eventId: number, bufPtr: number) => queryKeys.read(eventId, bufPtr, 1 << 30),
    getHttpEventHeaderVarNameByIdSize: headerKeys.size,
    getHttpEventHeaderVarNameById: (eventId: number, bufPtr: number) => headerKeys.read(eventId, bufPtr, 1 << 30),
    getHttpEventQueryValueByNameSize: query.size,
    getHttpEventQueryValueByName: query.read,
    getHttpEventHeadersSize: header.size,
    getHttpEventHeaders: header.read,
    readHttpEventBody(eventId: number, bufPtr: number, bufSize: number, countPtr: number): number {
      const c = event(eventId);
      if (!c) return Errno.eventNotFound;
      const body = c.call.input.body ?? new Uint8Array(0);
      const rest = c.event.bodyClosed ? 0 : body.length - c.event.bodyRead;
      const n = Math.min(rest, bufSize);
      if (!view(bufPtr, n)) return Errno.addressOutOfMemory;
      mem.copyOut(body.subarray(c.event.bodyRead, c.event.bodyRead + n), bufPtr, n);
      c.event.bodyRead += n;
      const err = writeU32(countPtr, n);
      if (err) return err;
      return c.event.bodyRead >= body.length || c.event.bodyClosed ? Errno.eof : Errno.none;
    },
    closeHttpEventBody(eventId: number): number {
      const c = event(eventId);
      if (!c) return Errno.eventNotFound;
      c.event.bodyClosed = true;
      return Errno.none;
    },
    eventHttpWrite(eventId: number, bufPtr: number, bufSize: number, nPtr: number): number {
      const c = event(eventId);
      if (!c) return Errno.eventNotFound;
      if (!view(bufPtr, bufSize)) return Errno.addressOutOfMemory;
      if (c.call.size + bufSize > MAX_RESPONSE_BYTES) throw new OutputTooLarge();
      mem.copyIn(bufPtr, bufSize, c.call.chunks);
      c.call.size += bufSize;
      return writeU32(nPtr, bufSize);
    },
    eventHttpFlush(eventId: number): number {
      return event(eventId) ? Errno.none : Errno.eventNotFound; // the answer is sent whole when the call returns
    },
    eventHttpRetCode(eventId: number, code: number): number {
      const c = event(eventId);
      if (!c) return Errno.eventNotFound;
      c.call.status = code;
      return Errno.none;
    },
    eventHttpHeaderAdd(eventId: number, kPtr: number, kLen: number, vPtr: number, vLen: number): number {
      const c = event(eventId);
      if (!c) return Errno.eventNotFound;
      c.call.headerBudget.add(kLen, vLen); // before decoding: a 1 GB "header" is refused, not read
      const k = text(kPtr, kLen);
      const v = text(vPtr, vLen);
      if (k === null || v === null) return Errno.addressOutOfMemory;
      c.call.headers.push([k, v]);
      return Errno.none;
    },
    eventHttpRedirect(eventId: number, urlPtr: number, urlLen: number, code: number): number {
      const c = event(eventId);
      if (!c) return Errno.eventNotFound;
      c.call.headerBudget.add("location".length, urlLen);
      const url = text(urlPtr, urlLen);
      if (url === null) return Errno.addressOutOfMemory;
      c.call.headers.push(["location", url]);
      c.call.status = code;
      return Errno.none;
    },
  });
}

/**
 * Every argument as the u32 the guest meant: wasm passes i32 to JS as signed, so a pointer past 2 GiB (or a size
 * above 2^31) would otherwise read as negative. One wrapper per arity: a rest parameter allocated on every call cost
 * ~3 us a call (measured, bench/abi_bench.ts).
 */
function unsigned(fns: Record<string, (...a: number[]) => number>): Record<string, (...a: never[]) => number> {
  const out: Record<string, (...a: never[]) => number> = {};
  for (const [name, f] of Object.entries(fns)) {
    const wrapped = [
      () => f(),
      (a: number) => f(a >>> 0),
      (a: number, b: number) => f(a >>> 0, b >>> 0),
      (a: number, b: number, c: number) => f(a >>> 0, b >>> 0, c >>> 0),
      (a: number, b: number, c: number, d: number) => f(a >>> 0, b >>> 0, c >>> 0, d >>> 0),
      (a: number, b: number, c: number, d: number, e: number) => f(a >>> 0, b >>> 0, c >>> 0, d >>> 0, e >>> 0),
    ][f.length];
    if (!wrapped) throw new Error(`taubyte/sdk ${name} takes ${f.length} arguments`);
    out[name] = wrapped as (...a: never[]) => number;
  }
  return out;
}

/** The `taubyte/sdk` calls tau provides; a module importing any other is refused at build, naming it. */
export const TAUBYTE_CALLS: ReadonlySet<string> = new Set(
  Object.keys(taubyteHttpImports(undefined as unknown as GuestMemory, () => ({}) as never)),
);
