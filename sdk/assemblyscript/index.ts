// deno-fmt-ignore-file -- AssemblyScript decorators on declared functions are not TypeScript; the formatter would drop them.
// tau SDK for AssemblyScript functions: `import { Request, Response, log } from "tau-sdk"`.
// Thin wrappers over the host ABI in docs/abi.md (module "tau"); all strings cross as UTF-8 (ptr, len).
//
//   export function ping(): void {
//     const req = new Request();
//     new Response().status(200).header("content-type", "text/plain").send("hello " + req.param("name"));
//   }

// ---- host imports ----

@external("tau", "req_len")
declare function req_len(field: i32): i32;
@external("tau", "req_read")
declare function req_read(field: i32, ptr: usize, len: i32): i32;
@external("tau", "header_get")
declare function header_get(namePtr: usize, nameLen: i32, outPtr: usize, outLen: i32): i32;
@external("tau", "param_get")
declare function param_get(namePtr: usize, nameLen: i32, outPtr: usize, outLen: i32): i32;
@external("tau", "resp_status")
declare function resp_status(code: i32): void;
@external("tau", "resp_header")
declare function resp_header(kPtr: usize, kLen: i32, vPtr: usize, vLen: i32): void;
@external("tau", "resp_write")
declare function resp_write(ptr: usize, len: i32): void;
@external("tau", "log")
declare function host_log(ptr: usize, len: i32): void;

// ---- request ----

export namespace Field {
  export const METHOD: i32 = 0;
  export const PATH: i32 = 1;
  export const QUERY: i32 = 2;
  export const HEADERS: i32 = 3;
  export const BODY: i32 = 4;
}

function readField(field: i32): ArrayBuffer {
  const n = req_len(field);
  const buf = new ArrayBuffer(n < 0 ? 0 : n);
  if (n > 0) req_read(field, changetype<usize>(buf), n);
  return buf;
}

// Shared shape of header_get / param_get: ask for the length first, then copy.
function lookup(name: string, isHeader: bool): string | null {
  const key = String.UTF8.encode(name);
  const keyPtr = changetype<usize>(key);
  const keyLen = key.byteLength;
  const n = isHeader ? header_get(keyPtr, keyLen, 0, 0) : param_get(keyPtr, keyLen, 0, 0);
  if (n < 0) return null;
  if (n == 0) return "";
  const out = new ArrayBuffer(n);
  if (isHeader) header_get(keyPtr, keyLen, changetype<usize>(out), n);
  else param_get(keyPtr, keyLen, changetype<usize>(out), n);
  return String.UTF8.decode(out);
}

/** The current request. Fields are read from the host on demand. */
export class Request {
  get method(): string {
    return String.UTF8.decode(readField(Field.METHOD));
  }
  /** Path without the query string, as sent (percent-encoding kept). */
  get path(): string {
    return String.UTF8.decode(readField(Field.PATH));
  }
  /** Raw query string without the leading "?". */
  get query(): string {
    return String.UTF8.decode(readField(Field.QUERY));
  }
  /** Header value (case-insensitive name), or null when absent. */
  header(name: string): string | null {
    return lookup(name, true);
  }
  /** Route parameter, e.g. `id` for the route `/users/:id`, or null when absent. */
  param(name: string): string | null {
    return lookup(name, false);
  }
  /** First value of a query parameter (no percent-decoding), or null. */
  queryParam(name: string): string | null {
    const parts = this.query.split("&");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      const eq = p.indexOf("=");
      const key = eq < 0 ? p : p.substring(0, eq);
      if (key == name) return eq < 0 ? "" : p.substring(eq + 1);
    }
    return null;
  }
  /** All headers as "name: value" lines (lower-case names). */
  headersText(): string {
    return String.UTF8.decode(readField(Field.HEADERS));
  }
  bodyBytes(): Uint8Array {
    return Uint8Array.wrap(readField(Field.BODY));
  }
  text(): string {
    return String.UTF8.decode(readField(Field.BODY));
  }
}

// ---- response ----

/** Builds the response; each call goes straight to the host, so order status/headers before the body. */
export class Response {
  status(code: i32): Response {
    resp_status(code);
    return this;
  }
  header(name: string, value: string): Response {
    const k = String.UTF8.encode(name);
    const v = String.UTF8.encode(value);
    resp_header(changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength);
    return this;
  }
  /** Appends text to the body (UTF-8). May be called several times. */
  send(body: string): Response {
    const b = String.UTF8.encode(body);
    resp_write(changetype<usize>(b), b.byteLength);
    return this;
  }
  sendBytes(body: Uint8Array): Response {
    resp_write(body.dataStart, body.byteLength);
    return this;
  }
}

/** Writes one line to the function's log (`tau logs`). */
export function log(message: string): void {
  const b = String.UTF8.encode(message);
  host_log(changetype<usize>(b), b.byteLength);
}

// ---- host services: databases, storages, globals, outbound HTTP, secrets (data.ts) ----

export { Database, Storage, Globals, fetch, projectName, randomBytes, secret } from "./data";

// ---- p2p commands (p2p.ts) ----

export { CommandAnswer, discoverPeers, listenToProtocol, sendCommand, sendCommandTo, trySendCommand } from "./p2p";

// ---- pubsub messaging (pubsub.ts) ----

export { publish, publishBytes, webSocketURL, messageChannel, messageData, messageText } from "./pubsub";
