// deno-fmt-ignore-file -- AssemblyScript decorators on declared functions are not TypeScript; the formatter would drop them.
// tau SDK for AssemblyScript: databases, storages, globals, outbound HTTP, who-am-I, random bytes and secrets. These wrap
// the host calls of Taubyte's ABI (module "taubyte/sdk", docs/abi.md): one host implementation serves Go, Rust and
// AssemblyScript functions alike. Not found is null; any other failure traps with the call and its errno (the
// function answers 500 with a request id, and the node logs why).
//
//   export function visit(): void {
//     const db = Database.open("counters");
//     const n = db.getString("visits");
//     db.putString("visits", n == null ? "1" : (I32.parseInt(n) + 1).toString());
//   }

@external("taubyte/sdk", "newDatabase")
declare function newDatabase(namePtr: usize, nameLen: u32, idPtr: usize): u32;
@external("taubyte/sdk", "databaseGetSize")
declare function databaseGetSize(id: u32, keyPtr: usize, keyLen: u32, sizePtr: usize): u32;
@external("taubyte/sdk", "databaseGet")
declare function databaseGet(id: u32, keyPtr: usize, keyLen: u32, dataPtr: usize): u32;
@external("taubyte/sdk", "databasePut")
declare function databasePut(id: u32, keyPtr: usize, keyLen: u32, dataPtr: usize, dataLen: u32): u32;
@external("taubyte/sdk", "databaseDelete")
declare function databaseDelete(id: u32, keyPtr: usize, keyLen: u32): u32;
@external("taubyte/sdk", "databaseListSize")
declare function databaseListSize(id: u32, prefixPtr: usize, prefixLen: u32, sizePtr: usize): u32;
@external("taubyte/sdk", "databaseList")
declare function databaseList(id: u32, prefixPtr: usize, prefixLen: u32, dataPtr: usize): u32;
@external("taubyte/sdk", "storageNew")
declare function storageNew(namePtr: usize, nameLen: u32, idPtr: usize): u32;
@external("taubyte/sdk", "storageAddFile")
declare function storageAddFile(id: u32, namePtr: usize, nameLen: u32, versionPtr: usize, bufPtr: usize, bufLen: u32, overwrite: u32): u32;
@external("taubyte/sdk", "storageGetFile")
declare function storageGetFile(id: u32, namePtr: usize, nameLen: u32, version: u32, fdPtr: usize): u32;
@external("taubyte/sdk", "storageReadFile")
declare function storageReadFile(id: u32, fd: u32, bufPtr: usize, bufLen: u32, countPtr: usize): u32;
@external("taubyte/sdk", "storageCloseFile")
declare function storageCloseFile(id: u32, fd: u32): u32;
@external("taubyte/sdk", "storageDeleteFile")
declare function storageDeleteFile(id: u32, namePtr: usize, nameLen: u32, version: u32, all: u32): u32;
@external("taubyte/sdk", "getGlobalValueSize")
declare function getGlobalValueSize(namePtr: usize, nameLen: u32, app: u32, fn: u32, sizePtr: usize): u32;
@external("taubyte/sdk", "getGlobalValue")
declare function getGlobalValue(namePtr: usize, nameLen: u32, app: u32, fn: u32, valuePtr: usize): u32;
@external("taubyte/sdk", "putGlobalValue")
declare function putGlobalValue(namePtr: usize, nameLen: u32, app: u32, fn: u32, valuePtr: usize, valueLen: u32, valueCap: u32): u32;
@external("taubyte/sdk", "newHttpClient")
declare function newHttpClient(idPtr: usize): u32;
@external("taubyte/sdk", "newHttpRequest")
declare function newHttpRequest(client: u32, idPtr: usize): u32;
@external("taubyte/sdk", "setHttpRequestURL")
declare function setHttpRequestURL(client: u32, request: u32, urlPtr: usize, urlLen: u32): u32;
@external("taubyte/sdk", "setHttpRequestMethod")
declare function setHttpRequestMethod(client: u32, request: u32, method: u32): u32;
@external("taubyte/sdk", "setHttpRequestBody")
declare function setHttpRequestBody(client: u32, request: u32, dataPtr: usize, dataLen: u32): u32;
@external("taubyte/sdk", "addHttpRequestHeader")
declare function addHttpRequestHeader(client: u32, request: u32, kPtr: usize, kLen: u32, vPtr: usize, vLen: u32): u32;
@external("taubyte/sdk", "doHttpRequest")
declare function doHttpRequest(client: u32, request: u32): u32;
@external("taubyte/sdk", "readHttpResponseBody")
declare function readHttpResponseBody(client: u32, request: u32, bufPtr: usize, bufLen: u32, countPtr: usize): u32;
@external("taubyte/sdk", "closeHttpResponseBody")
declare function closeHttpResponseBody(client: u32, request: u32): u32;
@external("taubyte/sdk", "selfProjectSize")
declare function selfProjectSize(sizePtr: usize): u32;
@external("taubyte/sdk", "selfProject")
declare function selfProject(ptr: usize): u32;
@external("taubyte/sdk", "cryptoRead")
declare function cryptoRead(bufPtr: usize, bufLen: u32, readPtr: usize): u32;
@external("taubyte/sdk", "tauSecretGet")
declare function tauSecretGet(namePtr: usize, nameLen: u32, bufPtr: usize, bufSize: u32, sizePtr: usize): u32;

const BUFFER_TOO_SMALL: u32 = 2;
const SECRET_NOT_SET: u32 = 1000;
const EOF: u32 = 8;
const KEY_NOT_FOUND: u32 = 29;
const FILE_NOT_FOUND: u32 = 35;
const METHODS = ["", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT"];

/** Four bytes of scratch the host writes one u32 answer into. */
const slot = new ArrayBuffer(8);
function slotPtr(): usize {
  return changetype<usize>(slot);
}
function slotValue(): u32 {
  return load<u32>(changetype<usize>(slot));
}

function check(err: u32, what: string): void {
  if (err != 0) throw new Error(what + " failed: taubyte/sdk errno " + err.toString());
}

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

/** A NUL-separated list (Taubyte's []string) as strings. */
function nulList(buf: ArrayBuffer): string[] {
  const out = new Array<string>();
  const bytes = Uint8Array.wrap(buf);
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] == 0) {
      out.push(String.UTF8.decode(buf.slice(start, i)));
      start = i + 1;
    }
  }
  return out;
}

const FROM_STORAGE: i32 = 0;
const FROM_RESPONSE: i32 = 1;

/**
 * Reads what the host hands out in pieces until EOF: a storage file (a = storage id, b = fd) or a response body
 * (a = client, b = request). AssemblyScript has no closures, hence the kind.
 */
function readAll(kind: i32, a: u32, b: u32, what: string): Uint8Array {
  const chunks = new Array<Uint8Array>();
  let total = 0;
  const count = new ArrayBuffer(4);
  for (;;) {
    const piece = new Uint8Array(65536);
    const countPtr = changetype<usize>(count);
    const err = kind == FROM_STORAGE
      ? storageReadFile(a, b, piece.dataStart, piece.byteLength, countPtr)
      : readHttpResponseBody(a, b, piece.dataStart, piece.byteLength, countPtr);
    const n = load<u32>(countPtr);
    if (n > 0) {
      chunks.push(piece.subarray(0, n));
      total += n;
    }
    if (err == EOF || (err == 0 && n == 0)) break;
    check(err, what);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    out.set(chunks[i], at);
    at += chunks[i].length;
  }
  return out;
}

/** A key-value database the project declares (databases/<name>.yaml, matched by name). */
export class Database {
  constructor(private id: u32) {}

  static open(name: string): Database {
    const n = utf8(name);
    check(newDatabase(changetype<usize>(n), n.byteLength, slotPtr()), "opening database " + name);
    return new Database(slotValue());
  }

  /** The value at `key`, or null when there is none. */
  get(key: string): Uint8Array | null {
    const k = utf8(key);
    const err = databaseGetSize(this.id, changetype<usize>(k), k.byteLength, slotPtr());
    if (err == KEY_NOT_FOUND) return null;
    check(err, "database get " + key);
    const out = new Uint8Array(slotValue());
    check(databaseGet(this.id, changetype<usize>(k), k.byteLength, out.dataStart), "database get " + key);
    return out;
  }

  getString(key: string): string | null {
    const v = this.get(key);
    return v == null ? null : String.UTF8.decode(v.buffer);
  }

  put(key: string, value: Uint8Array): void {
    const k = utf8(key);
    check(databasePut(this.id, changetype<usize>(k), k.byteLength, value.dataStart, value.byteLength), "database put " + key);
  }

  putString(key: string, value: string): void {
    this.put(key, Uint8Array.wrap(utf8(value)));
  }

  delete(key: string): void {
    const k = utf8(key);
    check(databaseDelete(this.id, changetype<usize>(k), k.byteLength), "database delete " + key);
  }

  /** Keys starting with `prefix`, sorted. */
  list(prefix: string): string[] {
    const p = utf8(prefix);
    check(databaseListSize(this.id, changetype<usize>(p), p.byteLength, slotPtr()), "database list " + prefix);
    const out = new ArrayBuffer(slotValue());
    if (out.byteLength > 0) {
      check(databaseList(this.id, changetype<usize>(p), p.byteLength, changetype<usize>(out)), "database list " + prefix);
    }
    return nulList(out);
  }
}

/** An object (or streaming) storage the project declares (storages/<name>.yaml, matched by name). */
export class Storage {
  constructor(private id: u32) {}

  static open(name: string): Storage {
    const n = utf8(name);
    check(storageNew(changetype<usize>(n), n.byteLength, slotPtr()), "opening storage " + name);
    return new Storage(slotValue());
  }

  /** Stores `data` as a new version of `file` (or replaces the current one); returns its version. */
  add(file: string, data: Uint8Array, overwrite: bool = false): u32 {
    const f = utf8(file);
    check(storageAddFile(this.id, changetype<usize>(f), f.byteLength, slotPtr(), data.dataStart, data.byteLength, overwrite ? 1 : 0), "storage add " + file);
    return slotValue();
  }

  /** A version of `file` (0: the current one), or null when there is none. */
  read(file: string, version: u32 = 0): Uint8Array | null {
    const f = utf8(file);
    const err = storageGetFile(this.id, changetype<usize>(f), f.byteLength, version, slotPtr());
    if (err == FILE_NOT_FOUND) return null;
    check(err, "storage read " + file);
    const fd = slotValue();
    const data = readAll(FROM_STORAGE, this.id, fd, "storage read " + file);
    storageCloseFile(this.id, fd);
    return data;
  }

  /** Deletes one version of `file` (0: the current one), or every version. */
  delete(file: string, version: u32 = 0, allVersions: bool = false): void {
    const f = utf8(file);
    check(storageDeleteFile(this.id, changetype<usize>(f), f.byteLength, version, allVersions ? 1 : 0), "storage delete " + file);
  }
}

/** Values shared by every function of the project. */
export namespace Globals {
  export function get(name: string): Uint8Array | null {
    const n = utf8(name);
    const err = getGlobalValueSize(changetype<usize>(n), n.byteLength, 0, 0, slotPtr());
    if (err == KEY_NOT_FOUND) return null;
    check(err, "global get " + name);
    const out = new Uint8Array(slotValue());
    check(getGlobalValue(changetype<usize>(n), n.byteLength, 0, 0, out.dataStart), "global get " + name);
    return out;
  }
  export function put(name: string, value: Uint8Array): void {
    const n = utf8(name);
    check(putGlobalValue(changetype<usize>(n), n.byteLength, 0, 0, value.dataStart, value.byteLength, value.byteLength), "global put " + name);
  }
}

/**
 * An HTTP request out of the function; the body of the answer. Public addresses only, unless the function's
 * `outbound.allow` names the target.
 */
export function fetch(url: string, method: string = "GET", body: Uint8Array | null = null, headers: string[] = []): Uint8Array {
  check(newHttpClient(slotPtr()), "http client");
  const client = slotValue();
  check(newHttpRequest(client, slotPtr()), "http request");
  const request = slotValue();
  const u = utf8(url);
  check(setHttpRequestURL(client, request, changetype<usize>(u), u.byteLength), "http url " + url);
  const m = METHODS.indexOf(method.toUpperCase());
  check(m > 0 ? setHttpRequestMethod(client, request, m) : 14, "http method " + method);
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const k = utf8(headers[i]);
    const v = utf8(headers[i + 1]);
    check(addHttpRequestHeader(client, request, changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength), "http header " + headers[i]);
  }
  if (body != null) check(setHttpRequestBody(client, request, body.dataStart, body.byteLength), "http body");
  check(doHttpRequest(client, request), method + " " + url);
  const data = readAll(FROM_RESPONSE, client, request, "http response " + url);
  closeHttpResponseBody(client, request);
  return data;
}

/** The name of the project this function belongs to. */
export function projectName(): string {
  check(selfProjectSize(slotPtr()), "self project");
  const out = new ArrayBuffer(slotValue());
  check(selfProject(changetype<usize>(out)), "self project");
  return String.UTF8.decode(out);
}

/** `n` bytes from the host's cryptographic random source. */
export function randomBytes(n: i32): Uint8Array {
  const out = new Uint8Array(n);
  const read = new ArrayBuffer(8);
  check(cryptoRead(out.dataStart, n, changetype<usize>(read)), "random");
  return out;
}

/**
 * The project secret `name` (tau secret set PROJECT NAME), or null when it is not set (the function's log says so).
 * The function's config must list it (`secrets: [NAME]`); one not listed traps.
 */
export function secret(name: string): string | null {
  const n = utf8(name);
  let buf = new ArrayBuffer(256);
  let err = tauSecretGet(changetype<usize>(n), n.byteLength, changetype<usize>(buf), buf.byteLength, slotPtr());
  if (err == SECRET_NOT_SET) return null;
  if (err == BUFFER_TOO_SMALL) {
    buf = new ArrayBuffer(slotValue());
    err = tauSecretGet(changetype<usize>(n), n.byteLength, changetype<usize>(buf), buf.byteLength, slotPtr());
  }
  check(err, "secret " + name);
  return String.UTF8.decode(buf.slice(0, slotValue()));
}
