/**
 * What every part of Taubyte's host ABI (`taubyte/sdk`) shares: its error numbers, guest-memory access that answers
 * errnos instead of trapping the host, the per-call and per-instance state the calls read, and the wrappers that
 * turn a table of host functions into imports (plain for pure calls, JSPI-suspending for host services).
 *
 * Conventions (Taubyte's go-sdk-symbols; facts, not code, taken from them): strings go in as (ptr, len), byte
 * slices as (ptr, len, cap); values come out in two steps, a `...Size` call writing the length (u32 little-endian)
 * and a call copying the bytes into the guest's buffer; string lists are each string followed by NUL. Every call
 * answers an errno: 0 is success; a pointer outside the guest's memory is addressOutOfMemory, never a host trap.
 */
import type { GuestMemory, SdkCall } from "../abi_sdk.ts";
import { type HostError, type HostServices, type SelfInfo } from "../host/services.ts";
import { DeadlineExceeded, meter } from "../meter.ts";

export const TAUBYTE_MODULE = "taubyte/sdk";

/** Taubyte's errno values used here (go-sdk errno: the position in its iota list). */
export const Errno = {
  none: 0,
  eventNotFound: 1,
  bufferTooSmall: 2,
  addressOutOfMemory: 3,
  eof: 8,
  clientNotFound: 10,
  parseUrlFailed: 11,
  httpRequestFailed: 13,
  invalidMethod: 14,
  newRequestFailed: 15,
  headerNotFound: 16,
  invalidCid: 19,
  databaseCreateFailed: 22,
  databaseGetFailed: 23,
  databasePutFailed: 24,
  databaseNotFound: 25,
  databaseDeleteFailed: 26,
  databaseListFailed: 27,
  databaseKeyNotFound: 29,
  addFileFailed: 31,
  getFileFailed: 32,
  deleteFileFailed: 33,
  closeFileFailed: 34,
  fileNameNotFound: 35,
  listFileVersionsFailed: 36,
  zeroSize: 50,
  storageNotFound: 92,
  storageListFailed: 93,
  contentNotFound: 96,
  readingFile: 97,
  invalidWhence: 98,
  cidNotFound: 100,
  randRead: 110,
} as const;

export const encoder = new TextEncoder();

/** What the ABI knows of one event (one call of the export): body position, values computed for size-then-read. */
export class TaubyteEvent {
  bodyRead = 0;
  bodyClosed = false;
  /** Values already computed for this event (a guest asks for the size, then the bytes: compute once). */
  readonly cache = new Map<string, Uint8Array>();
  constructor(readonly id: number) {}
}

/**
 * Ids a guest holds across events (a Go SDK program may open a database in `_initialize` and keep it): per warm
 * instance, bounded, released on close. What an id names is resolved on every use against the running call's
 * bindings, so the same module deployed twice never sees the other deployment's data.
 */
export class Handles<T> {
  private next = 1;
  private readonly live = new Map<number, T>();
  constructor(private readonly max = 1024) {}
  add(value: T): number | undefined {
    if (this.live.size >= this.max) return undefined;
    const id = this.next++;
    this.live.set(id, value);
    return id;
  }
  get(id: number): T | undefined {
    return this.live.get(id);
  }
  delete(id: number): boolean {
    return this.live.delete(id);
  }
}

/**
 * Ids for names (databases, storages): opening the same name again gives the same id, so a guest that opens its
 * database on every request (and never closes it) does not run out of ids; closing one is a no-op, since an id only
 * stands for its name.
 */
export class NameIds {
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [""];
  constructor(private readonly max = 1024) {}
  add(name: string): number | undefined {
    let id = this.ids.get(name);
    if (id === undefined && this.names.length <= this.max) {
      id = this.names.push(name) - 1;
      this.ids.set(name, id);
    }
    return id;
  }
  get(id: number): string | undefined {
    return id > 0 ? this.names[id] : undefined;
  }
  has(id: number): boolean {
    return id > 0 && id < this.names.length;
  }
}

/** The running call as every part of the ABI sees it. */
export interface TaubyteCall {
  call: SdkCall;
  event: TaubyteEvent;
  host: HostServices;
  self: SelfInfo;
}

/** Guest memory, bounds-checked: every accessor answers an errno (or null) for a range outside the memory. */
export class GuestAccess {
  private words?: DataView;
  constructor(readonly mem: GuestMemory) {}

  view(ptr: number, len: number): Uint8Array | null {
    const buf = this.mem.memory!.buffer;
    return ptr + len <= buf.byteLength ? new Uint8Array(buf, ptr, len) : null;
  }
  /** One DataView per memory buffer (memory.grow replaces it): a u32 write allocates nothing. */
  writeU32(ptr: number, value: number): number {
    const buf = this.mem.memory!.buffer;
    if (ptr + 4 > buf.byteLength) return Errno.addressOutOfMemory;
    if (this.words?.buffer !== buf) this.words = new DataView(buf);
    this.words.setUint32(ptr, value, true);
    return Errno.none;
  }
  writeU64(ptr: number, value: number): number {
    const buf = this.mem.memory!.buffer;
    if (ptr + 8 > buf.byteLength) return Errno.addressOutOfMemory;
    if (this.words?.buffer !== buf) this.words = new DataView(buf);
    this.words.setBigUint64(ptr, BigInt(value), true);
    return Errno.none;
  }
  text(ptr: number, len: number): string | null {
    return this.view(ptr, len) ? this.mem.string(ptr, len) : null;
  }
  /** The guest's bytes, copied (the guest reuses its buffers; a host call may outlive this moment). */
  bytes(ptr: number, len: number): Uint8Array | null {
    const chunks: Uint8Array[] = [];
    if (!this.view(ptr, len)) return null;
    this.mem.copyIn(ptr, len, chunks);
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(len);
    let at = 0;
    for (const c of chunks) out.set(c, at), at += c.length;
    return out;
  }
  /** `bytes` into the guest buffer at `ptr`, which the guest sized with the matching `...Size` call. */
  writeOut(bytes: Uint8Array, ptr: number, bufSize = bytes.length): number {
    if (bufSize < bytes.length) return Errno.bufferTooSmall;
    if (!this.view(ptr, bytes.length)) return Errno.addressOutOfMemory;
    this.mem.copyOut(bytes, ptr, bytes.length);
    return Errno.none;
  }
}

/** Strings as Taubyte's codec encodes a []string: each followed by a NUL byte. */
export function nulList(items: string[]): Uint8Array {
  return encoder.encode(items.map((s) => `${s}\0`).join(""));
}

/**
 * Waits for a host operation, but never past the call's timeout: a guest suspended in a slow store or network call
 * still ends at its timeout, exactly (the operation itself may finish later; its result is dropped). Meanwhile the
 * thread is free for other calls: the meter's state goes aside and comes back on resume (Meter.suspend/resume), so
 * what follows the wait (copying the answer into guest memory) is metered as this call again.
 */
export async function withinDeadline<T>(op: Promise<T>): Promise<T> {
  const left = meter.cap - performance.now();
  const state = meter.suspend();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    if (left <= 0) throw new DeadlineExceeded(false, true);
    if (left === Infinity) return await op;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceeded(false, true)), left);
    });
    return await Promise.race([op, expired]);
  } finally {
    clearTimeout(timer);
    meter.resume(state);
  }
}

/**
 * A value the guest reads in two calls (its size, then its bytes), fetched from the host once per event. A null
 * (absent) is not kept: the next call asks again.
 */
export async function fetchOnce<T extends Uint8Array | null>(
  c: TaubyteCall,
  what: string,
  fetch: () => Promise<T>,
): Promise<T> {
  const kept = c.event.cache.get(what);
  if (kept) return kept as T;
  const got = await withinDeadline(fetch());
  if (got !== null) c.event.cache.set(what, got);
  return got;
}

/** A host failure as the guest sees it: logged for the user, answered with `errno`. */
export function failed(c: TaubyteCall, err: unknown, errno: number): number {
  if (!(err instanceof Error) || err.name !== "HostError") throw err; // deadline, trap: not the guest's to handle
  c.call.log.text("stderr", `host: ${(err as HostError).message}`);
  return errno;
}

export type SyncCalls = Record<string, (...a: number[]) => number>;
export type AsyncCalls = Record<string, (...a: number[]) => Promise<number>>;

/**
 * Every argument as the u32 the guest meant: wasm passes i32 to JS as signed, so a pointer past 2 GiB (or a size
 * above 2^31) would otherwise read as negative. i64 arguments arrive as BigInt and are left alone. One wrapper per
 * arity: a rest parameter allocated on every call cost ~3 us a call (measured, bench/abi_bench.ts).
 */
export function unsigned<F extends (...a: number[]) => unknown>(name: string, f: F): F {
  const u = (a: number) => (typeof a === "number" ? a >>> 0 : a);
  const wrapped = [
    () => f(),
    (a: number) => f(u(a)),
    (a: number, b: number) => f(u(a), u(b)),
    (a: number, b: number, c: number) => f(u(a), u(b), u(c)),
    (a: number, b: number, c: number, d: number) => f(u(a), u(b), u(c), u(d)),
    (a: number, b: number, c: number, d: number, e: number) => f(u(a), u(b), u(c), u(d), u(e)),
    (a: number, b: number, c: number, d: number, e: number, g: number) => f(u(a), u(b), u(c), u(d), u(e), u(g)),
    (a: number, b: number, c: number, d: number, e: number, g: number, h: number) =>
      f(u(a), u(b), u(c), u(d), u(e), u(g), u(h)),
  ][f.length];
  if (!wrapped) throw new Error(`taubyte/sdk ${name} takes ${f.length} arguments`);
  return wrapped as F;
}
