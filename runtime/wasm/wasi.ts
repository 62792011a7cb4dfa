/**
 * A minimal WASI preview1 (`wasi_snapshot_preview1`) for functions: argv, environ, stdin from the request body,
 * stdout/stderr captured, clocks, randomness, exit. Nothing else: no preopened directories, no files, no
 * sockets. Every other preview1 call exists (so any WASI module instantiates) and answers EBADF or ENOSYS.
 */

import { meter } from "./meter.ts";

export const WASI_MODULE = "wasi_snapshot_preview1";

const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;
const ERRNO_FAULT = 21;
const ERRNO_INVAL = 28;
const ERRNO_NOSYS = 52;
const ERRNO_SPIPE = 70;

const FILETYPE_UNKNOWN = 0;
const RIGHT_FD_READ = 1n << 1n;
const RIGHT_FD_WRITE = 1n << 6n;

/** proc_exit unwinds the guest with this; the exit code is the result, not an error. */
export class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = "ProcExit";
  }
}

export interface WasiOptions {
  args: string[];
  /**
   * Variables, or a function giving them as `NAME=value` strings: it is called only if the guest reads its
   * environment (building a CGI environment is a cost of every WAGI call).
   */
  env: Record<string, string> | (() => string[]);
  stdin: Uint8Array | null;
  /** `bytes` is a view into guest memory, valid during the call only: a sink copies what it keeps. */
  stdout: (bytes: Uint8Array) => void;
  stderr: (bytes: Uint8Array) => void;
}

/** Per iovec, host calls charge the meter this much on top of the bytes they copy (reading the iovec itself). */
const IOVEC_COST = 64;

/** Calls that touch file descriptors answer EBADF (there are none beyond 0-2); the rest ENOSYS. */
const FD_CALLS = [
  "fd_advise",
  "fd_allocate",
  "fd_datasync",
  "fd_fdstat_set_flags",
  "fd_fdstat_set_rights",
  "fd_filestat_set_size",
  "fd_filestat_set_times",
  "fd_pread",
  "fd_prestat_dir_name",
  "fd_pwrite",
  "fd_readdir",
  "fd_renumber",
  "fd_sync",
  "fd_tell",
  "path_create_directory",
  "path_filestat_get",
  "path_filestat_set_times",
  "path_link",
  "path_open",
  "path_readlink",
  "path_remove_directory",
  "path_rename",
  "path_symlink",
  "path_unlink_file",
];
const NOSYS_CALLS = ["poll_oneoff", "proc_raise", "sock_accept", "sock_recv", "sock_send", "sock_shutdown"];

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** NUL-terminated strings laid out as the guest gets them: one block, and where each string starts in it. */
interface StringList {
  bytes: Uint8Array;
  offsets: number[];
}

/**
 * One join and one encodeInto, both native: a character loop over ~20 short strings (each a rope until flattened)
 * measured as costly as the whole memory reset. Offsets come from lengths, not from scanning for NUL, so a NUL inside
 * a value cuts that value only, as it always did. Anything but ASCII encodes to more bytes than characters and takes
 * the slower way.
 */
function stringList(items: string[]): StringList {
  if (items.length === 0) return { bytes: EMPTY, offsets: [] };
  const joined = items.join("\0");
  const bytes = new Uint8Array(joined.length + 1); // the last NUL is the zero already there
  const { read, written } = encoder.encodeInto(joined, bytes);
  if (read !== joined.length || written !== joined.length) return utf8List(items);
  const offsets = new Array<number>(items.length);
  let at = 0;
  for (let i = 0; i < items.length; i++) {
    offsets[i] = at;
    at += items[i].length + 1;
  }
  return { bytes, offsets };
}

function utf8List(items: string[]): StringList {
  const encoded = items.map((s) => encoder.encode(s + "\0"));
  const bytes = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0));
  const offsets = new Array<number>(items.length);
  let at = 0;
  for (let i = 0; i < encoded.length; i++) {
    offsets[i] = at;
    bytes.set(encoded[i], at);
    at += encoded[i].length;
  }
  return { bytes, offsets };
}

export class WasiShim {
  memory?: WebAssembly.Memory;
  private opts: WasiOptions;
  private stdinOffset = 0;
  private argv?: StringList;
  private environ?: StringList;

  constructor(opts: WasiOptions) {
    this.opts = opts;
  }

  /**
   * Swaps in the next call's arguments, environment, stdin and sinks: a warm WAGI instance serves one call after
   * another through the same import object, and nothing of one call's WASI state may reach the next.
   */
  bind(opts: WasiOptions): void {
    this.opts = opts;
    this.stdinOffset = 0;
    this.argv = undefined;
    this.environ = undefined;
  }

  private args(): StringList {
    return this.argv ??= stringList(this.opts.args);
  }

  private env(): StringList {
    if (this.environ) return this.environ;
    const env = this.opts.env;
    let items: string[];
    if (typeof env === "function") items = env();
    else {
      items = [];
      for (const k in env) items.push(`${k}=${env[k]}`);
    }
    return this.environ = stringList(items);
  }

  // Views of the guest's memory, made again only when its buffer changes: memory.grow detaches the old one, which
  // leaves its views empty. A view per host call, or even reading `memory.buffer` per call, was a measurable part of a
  // WAGI hello call.
  private mapped?: WebAssembly.Memory;
  private dataView?: DataView;
  private u8: Uint8Array = EMPTY;

  private view(): DataView {
    if (this.u8.length === 0 || this.mapped !== this.memory) this.remap();
    return this.dataView!;
  }
  private bytes(): Uint8Array {
    if (this.u8.length === 0 || this.mapped !== this.memory) this.remap();
    return this.u8;
  }
  private remap() {
    const buffer = this.memory!.buffer;
    this.mapped = this.memory;
    this.dataView = new DataView(buffer);
    this.u8 = new Uint8Array(buffer);
  }

  private sizes(list: StringList, countPtr: number, sizePtr: number): number {
    const v = this.view();
    v.setUint32(countPtr, list.offsets.length, true);
    v.setUint32(sizePtr, list.bytes.length, true);
    return ERRNO_SUCCESS;
  }

  private fill(list: StringList, ptrsPtr: number, bufPtr: number): number {
    const v = this.view();
    const { bytes, offsets } = list;
    meter.charge(bytes.length + 4 * offsets.length);
    for (let i = 0; i < offsets.length; i++) v.setUint32(ptrsPtr + 4 * i, bufPtr + offsets[i], true);
    this.bytes().set(bytes, bufPtr);
    return ERRNO_SUCCESS;
  }

  private readStdin(iovs: number, iovsLen: number, nreadPtr: number): number {
    const v = this.view();
    const mem = this.bytes();
    const input = this.opts.stdin ?? EMPTY;
    let total = 0;
    for (let i = 0; i < iovsLen; i++) {
      const ptr = v.getUint32(iovs + 8 * i, true);
      const len = v.getUint32(iovs + 8 * i + 4, true);
      const n = Math.min(len, input.length - this.stdinOffset);
      if (n <= 0) break;
      meter.charge(IOVEC_COST + n);
      mem.set(input.subarray(this.stdinOffset, this.stdinOffset + n), ptr);
      this.stdinOffset += n;
      total += n;
    }
    v.setUint32(nreadPtr, total, true);
    return ERRNO_SUCCESS;
  }

  private write(fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
    const sink = fd === 1 ? this.opts.stdout : fd === 2 ? this.opts.stderr : undefined;
    if (!sink) return ERRNO_BADF;
    const v = this.view();
    const mem = this.bytes();
    let total = 0;
    for (let i = 0; i < iovsLen; i++) {
      const ptr = v.getUint32(iovs + 8 * i, true);
      const len = v.getUint32(iovs + 8 * i + 4, true);
      meter.charge(IOVEC_COST);
      if (len === 0) continue;
      if (ptr + len > mem.length) return ERRNO_FAULT;
      sink(mem.subarray(ptr, ptr + len)); // a view: the sink copies what it keeps (and charges for it)
      total += len;
    }
    v.setUint32(nwrittenPtr, total, true);
    return ERRNO_SUCCESS;
  }

  private clockNs(id: number): bigint | undefined {
    // 0 realtime, 1 monotonic, 2/3 process/thread CPU time (approximated by the monotonic clock).
    if (id === 0) return BigInt(Date.now()) * 1_000_000n;
    if (id >= 1 && id <= 3) return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    return undefined;
  }

  /** Import object for `wasi_snapshot_preview1`. */
  imports(): Record<string, (...args: never[]) => number | void> {
    const isStd = (fd: number) => fd >= 0 && fd <= 2;
    const table: Record<string, (...args: never[]) => number | void> = {
      args_sizes_get: (c: number, s: number) => this.sizes(this.args(), c, s),
      args_get: (p: number, b: number) => this.fill(this.args(), p, b),
      environ_sizes_get: (c: number, s: number) => this.sizes(this.env(), c, s),
      environ_get: (p: number, b: number) => this.fill(this.env(), p, b),
      clock_res_get: (id: number, ptr: number) => {
        if (this.clockNs(id) === undefined) return ERRNO_INVAL;
        this.view().setBigUint64(ptr, 1000n, true);
        return ERRNO_SUCCESS;
      },
      clock_time_get: (id: number, _precision: bigint, ptr: number) => {
        const ns = this.clockNs(id);
        if (ns === undefined) return ERRNO_INVAL;
        this.view().setBigUint64(ptr, ns, true);
        return ERRNO_SUCCESS;
      },
      random_get: (ptr: number, len: number) => {
        const mem = this.bytes();
        if (ptr + len > mem.length) return ERRNO_FAULT;
        for (let off = 0; off < len; off += 65536) {
          meter.charge(Math.min(65536, len - off));
          crypto.getRandomValues(mem.subarray(ptr + off, ptr + Math.min(len, off + 65536)));
        }
        return ERRNO_SUCCESS;
      },
      proc_exit: (code: number) => {
        throw new ProcExit(code);
      },
      sched_yield: () => ERRNO_SUCCESS,
      fd_read: (fd: number, iovs: number, n: number, out: number) =>
        fd === 0 ? this.readStdin(iovs, n, out) : ERRNO_BADF,
      fd_write: (fd: number, iovs: number, n: number, out: number) => this.write(fd, iovs, n, out),
      fd_close: (fd: number) => isStd(fd) ? ERRNO_SUCCESS : ERRNO_BADF,
      fd_seek: (fd: number) => isStd(fd) ? ERRNO_SPIPE : ERRNO_BADF,
      fd_prestat_get: () => ERRNO_BADF, // no preopened directories: a function has no file system
      fd_fdstat_get: (fd: number, ptr: number) => {
        if (!isStd(fd)) return ERRNO_BADF;
        const v = this.view();
        v.setUint8(ptr, FILETYPE_UNKNOWN); // not a character device: libc then fully buffers stdout
        v.setUint16(ptr + 2, 0, true);
        v.setBigUint64(ptr + 8, fd === 0 ? RIGHT_FD_READ : RIGHT_FD_WRITE, true);
        v.setBigUint64(ptr + 16, 0n, true);
        return ERRNO_SUCCESS;
      },
      fd_filestat_get: (fd: number, ptr: number) => {
        if (!isStd(fd)) return ERRNO_BADF;
        this.bytes().fill(0, ptr, ptr + 64);
        return ERRNO_SUCCESS;
      },
    };
    for (const name of FD_CALLS) table[name] = () => ERRNO_BADF;
    for (const name of NOSYS_CALLS) table[name] = () => ERRNO_NOSYS;
    return table;
  }
}

/** Answer for preview1 names this shim does not know (newer or misspelled): present, but ENOSYS. */
export const wasiUnknown = (): number => ERRNO_NOSYS;
