/**
 * The HTTP client (Taubyte's `http/client` package): a guest builds a request (method, URL, headers, body) with pure
 * calls, sends it with doHttpRequest (a host operation with effects: JSPI, executors only, never run twice), then
 * reads the response it got. Where a request may go is the node's rule (host/services.ts OutboundOps): public
 * addresses, plus the function's allow-list.
 */
import {
  type AsyncCalls,
  Errno,
  failed,
  type GuestAccess,
  Handles,
  nulList,
  type SyncCalls,
  type TaubyteCall,
  withinDeadline,
} from "./abi.ts";
import { HostError, type OutboundResponse } from "../host/services.ts";

/** Taubyte's method numbers (go-sdk utils/convert: UNKNOWN = 0, then this order). */
const METHODS = ["", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT"];
const MAX_TEXT_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 32 * 1024 * 1024;

interface Request {
  method: number;
  url?: string;
  headers: Headers;
  body: Uint8Array | null;
  response?: OutboundResponse & { at: number; closed: boolean };
}

export function httpClientCalls(g: GuestAccess, current: () => TaubyteCall) {
  const requests = new Handles<Request>();
  const text = (ptr: number, len: number) => (len > MAX_TEXT_BYTES ? null : g.text(ptr, len));
  const request = (id: number) => requests.get(id);
  const headerValues = (h: Headers | [string, string][] | undefined, key: string) => {
    if (!h) return [];
    if (h instanceof Headers) {
      const v = h.get(key);
      return v === null ? [] : key.toLowerCase() === "set-cookie" ? h.getSetCookie() : [v];
    }
    const k = key.toLowerCase();
    return h.filter(([name]) => name === k).map(([, v]) => v);
  };
  const names = (h: Headers | [string, string][] | undefined) =>
    !h ? [] : [...new Set(h instanceof Headers ? [...h.keys()] : h.map(([k]) => k))];
  /** Header values for a key, NUL-separated: Taubyte's codec for []string. */
  const valuesOf = (id: number, keyPtr: number, keyLen: number, ofResponse: boolean): Uint8Array | number => {
    const r = request(id);
    if (!r) return Errno.newRequestFailed;
    const key = text(keyPtr, keyLen);
    if (key === null) return Errno.addressOutOfMemory;
    try {
      const values = headerValues(ofResponse ? r.response?.headers : r.headers, key);
      return values.length ? nulList(values) : Errno.headerNotFound;
    } catch {
      return Errno.headerNotFound;
    }
  };
  const keysOf = (id: number, ofResponse: boolean): Uint8Array | number => {
    const r = request(id);
    if (!r) return Errno.newRequestFailed;
    return nulList(names(ofResponse ? r.response?.headers : r.headers));
  };
  const sizeOr = (
    v: Uint8Array | number,
    sizePtr: number,
  ) => (typeof v === "number" ? v : g.writeU32(sizePtr, v.length));
  const bytesOr = (v: Uint8Array | number, ptr: number, size?: number) =>
    typeof v === "number" ? v : g.writeOut(v, ptr, size ?? v.length);
  const withHeader = (id: number, keyPtr: number, keyLen: number, edit: (h: Headers, key: string) => void) => {
    const r = request(id);
    if (!r) return Errno.newRequestFailed;
    const key = text(keyPtr, keyLen);
    if (key === null) return Errno.addressOutOfMemory;
    try {
      edit(r.headers, key);
      return Errno.none;
    } catch {
      return Errno.newRequestFailed; // not a valid header name or value
    }
  };

  const syncCalls: SyncCalls = {
    newHttpClient: (clientIdPtr) => g.writeU32(clientIdPtr, 1),
    newHttpRequest(_client, requestIdPtr) {
      const id = requests.add({ method: 1, headers: new Headers(), body: null });
      return id === undefined ? Errno.newRequestFailed : g.writeU32(requestIdPtr, id);
    },
    getHttpRequestHeaderSize: (_c, id, kPtr, kLen, sizePtr) => sizeOr(valuesOf(id, kPtr, kLen, false), sizePtr),
    getHttpRequestHeader: (_c, id, kPtr, kLen, ptr) => bytesOr(valuesOf(id, kPtr, kLen, false), ptr),
    setHttpRequestHeader(_c, id, kPtr, kLen, valuesPtr, valuesSize) {
      const raw = text(valuesPtr, valuesSize);
      if (raw === null) return Errno.addressOutOfMemory;
      const values = raw.split("\0").filter((v, i, all) => v !== "" || i < all.length - 1);
      return withHeader(id, kPtr, kLen, (h, key) => {
        h.delete(key);
        for (const v of values) h.append(key, v);
      });
    },
    deleteHttpRequestHeader: (_c, id, kPtr, kLen) => withHeader(id, kPtr, kLen, (h, key) => h.delete(key)),
    addHttpRequestHeader(_c, id, kPtr, kLen, vPtr, vLen) {
      const value = text(vPtr, vLen);
      if (value === null) return Errno.addressOutOfMemory;
      return withHeader(id, kPtr, kLen, (h, key) => h.append(key, value));
    },
    getHttpRequestHeaderKeysSize: (_c, id, sizePtr) => sizeOr(keysOf(id, false), sizePtr),
    getHttpRequestHeaderKeys: (_c, id, ptr, size) => bytesOr(keysOf(id, false), ptr, size),
    setHttpRequestMethod(_c, id, method) {
      const r = request(id);
      if (!r) return Errno.newRequestFailed;
      if (!METHODS[method]) return Errno.invalidMethod;
      r.method = method;
      return Errno.none;
    },
    getHttpRequestMethod(_c, id, methodPtr) {
      const r = request(id);
      return r ? g.writeU32(methodPtr, r.method) : Errno.newRequestFailed;
    },
    setHttpRequestBody(_c, id, dataPtr, dataSize) {
      const r = request(id);
      if (!r) return Errno.newRequestFailed;
      if (dataSize > MAX_BODY_BYTES) return Errno.httpRequestFailed;
      const body = g.bytes(dataPtr, dataSize);
      if (!body) return Errno.addressOutOfMemory;
      r.body = body;
      return Errno.none;
    },
    setHttpRequestURL(_c, id, urlPtr, urlLen) {
      const r = request(id);
      if (!r) return Errno.newRequestFailed;
      const url = text(urlPtr, urlLen);
      if (url === null) return Errno.addressOutOfMemory;
      if (!URL.canParse(url)) return Errno.parseUrlFailed;
      r.url = url;
      return Errno.none;
    },
    readHttpResponseBody(_c, id, buf, bufSize, countPtr) {
      const res = request(id)?.response;
      if (!res) return Errno.newRequestFailed;
      const n = res.closed ? 0 : Math.min(bufSize, res.body.length - res.at);
      const err = g.writeOut(res.body.subarray(res.at, res.at + n), buf, n);
      if (err) return err;
      res.at += n;
      const e2 = g.writeU32(countPtr, n);
      if (e2) return e2;
      return res.closed || res.at >= res.body.length ? Errno.eof : Errno.none;
    },
    closeHttpResponseBody(_c, id) {
      const r = request(id);
      if (!r) return Errno.newRequestFailed;
      if (r.response) r.response.closed = true;
      requests.delete(id); // a request is sent once: closing its answer frees it
      return Errno.none;
    },
    getHttpResponseHeaderSize: (_c, id, kPtr, kLen, sizePtr) => sizeOr(valuesOf(id, kPtr, kLen, true), sizePtr),
    getHttpResponseHeader: (_c, id, kPtr, kLen, ptr) => bytesOr(valuesOf(id, kPtr, kLen, true), ptr),
    getHttpResponseHeaderKeysSize: (_c, id, sizePtr) => sizeOr(keysOf(id, true), sizePtr),
    getHttpResponseHeaderKeys: (_c, id, ptr, size) => bytesOr(keysOf(id, true), ptr, size),
  };

  const asyncCalls: AsyncCalls = {
    async doHttpRequest(_client, id) {
      const c = current();
      const r = request(id);
      if (!r) return Errno.newRequestFailed;
      if (!r.url) return Errno.parseUrlFailed;
      try {
        const http = c.host.http;
        if (!http) throw new HostError("unbound", "outbound HTTP is not available on this node");
        const res = await withinDeadline(
          http.fetch({ method: METHODS[r.method], url: r.url, headers: [...r.headers], body: r.body }),
        );
        r.response = { ...res, at: 0, closed: false };
        return Errno.none;
      } catch (err) {
        return failed(c, err, Errno.httpRequestFailed);
      }
    },
  };
  return { sync: syncCalls, async: asyncCalls, effects: ["doHttpRequest"] };
}
