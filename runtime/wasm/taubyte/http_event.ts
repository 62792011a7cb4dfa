/**
 * Taubyte's host ABI, HTTP event part: the calls a function built with Taubyte's Go (TinyGo) or Rust SDK makes to
 * read its request and write its answer (conventions in abi.ts; docs/abi.md lists each call). Pure: they touch
 * only the call's own request and response, so they run inline on the serving thread.
 */
import { MAX_RESPONSE_BYTES, OutputTooLarge } from "../outcome.ts";
import { encoder, Errno, type GuestAccess, nulList, type SyncCalls, type TaubyteCall } from "./abi.ts";

/**
 * Taubyte's event types (go-sdk common: Undefined 0, Http 1, Pubsub 2, P2P 3). tau's own events (a cron tick, a
 * smartop check) are HTTP-shaped to a Taubyte guest: its HTTP event calls read them (runtime/wasm/event_input.ts).
 */
const EVENT_TYPE_HTTP = 1;
const EVENT_TYPE_PUBSUB = 2;
const EVENT_TYPE_P2P = 3;

/** A header name as Go's textproto.CanonicalMIMEHeaderKey writes it: each dash-separated word capitalised. */
export function canonicalHeader(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

/** Longer keys cannot be a query or header name: answered absent without decoding them. */
const MAX_KEY_BYTES = 8192;

/** The calls, reading the call returned by `current()` (a warm instance serves one call at a time). */
export function httpEventCalls(g: GuestAccess, current: () => TaubyteCall): SyncCalls {
  const mem = g.mem;
  // Arguments arrive unsigned (abi.ts `unsigned`), so a bound check is one comparison.
  const view = (ptr: number, len: number) => g.view(ptr, len);
  const writeU32 = (ptr: number, value: number) => g.writeU32(ptr, value);
  const text = (ptr: number, len: number) => g.text(ptr, len);
  /** The call for `eventId`, or undefined when the guest names another event. */
  const event = (eventId: number) => {
    const c = current();
    return c.event.id === eventId ? c : undefined;
  };
  /** A value in two calls: its size, then its bytes into a buffer that must be large enough. */
  const sized = (what: string, compute: (c: TaubyteCall) => Uint8Array) => {
    const value = (c: TaubyteCall) => {
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
  const byKey = (lookup: (c: TaubyteCall, key: string) => string | null) => {
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
  const queryOf = (c: TaubyteCall) => new URLSearchParams(c.call.input.query);
  const method = sized("method", (c) => encoder.encode(c.call.input.method));
  const host = sized("host", (c) => encoder.encode(c.call.input.headers.get("host") ?? ""));
  const path = sized("path", (c) => encoder.encode(c.call.input.path));
  const agent = sized("agent", (c) => encoder.encode(c.call.input.headers.get("user-agent") ?? ""));
  const queryKeys = sized("queryKeys", (c) => nulList([...new Set(queryOf(c).keys())]));
  // Go's net/http (which Taubyte's host hands its names from) canonicalises them: "content-type" is "Content-Type".
  const headerKeys = sized("headerKeys", (c) => nulList([...c.call.input.headers.keys()].map(canonicalHeader)));
  const query = byKey((c, key) => queryOf(c).get(key));
  const header = byKey((c, key) => {
    try {
      return c.call.input.headers.get(key);
    } catch {
      return null; // not a valid header name: it cannot be present
    }
  });
  return {
    getEventType(eventId: number, typePtr: number): number {
      const c = event(eventId);
      if (!c) return Errno.eventNotFound;
      const kind = c.call.input.event?.kind;
      return writeU32(
        typePtr,
        kind === "pubsub" ? EVENT_TYPE_PUBSUB : kind === "p2p" ? EVENT_TYPE_P2P : EVENT_TYPE_HTTP,
      );
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
  };
}
