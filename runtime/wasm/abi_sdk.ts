/**
 * Host side of the SDK calling convention (imports from module `tau`, documented in docs/abi.md).
 * A warm instance is reused across requests, so the imports read and write a per-call state object that the
 * engine swaps in before calling the guest's export.
 */
import { concatBytes } from "../bytes.ts";
import { CallLog, HeaderBudget } from "./guest_output.ts";
import { meter } from "./meter.ts";
import { type CallInput, MAX_RESPONSE_BYTES, type Outcome, OutputTooLarge } from "./outcome.ts";

export const SDK_MODULE = "tau";

/** Request fields readable with req_len / req_read. */
export const Field = { method: 0, path: 1, query: 2, headers: 3, body: 4 } as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const utf16 = new TextDecoder("utf-16le");
/** Longer names cannot be a request header or route parameter: answered absent without decoding them. */
const MAX_NAME_BYTES = 8192;
/** Longest AssemblyScript abort message or file name read from guest memory. */
const MAX_MESSAGE_BYTES = 4096;
/** Host calls copy guest memory in pieces of this size, charging the meter for each (meter.ts). */
const COPY_PIECE = 1024 * 1024;

/** AssemblyScript's abort() and other guest-declared failures: a trap with a message worth logging. */
export class GuestAbort extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GuestAbort";
  }
}

export class SdkCall {
  status = 200;
  headers: [string, string][] = [];
  chunks: Uint8Array[] = [];
  size = 0;
  readonly headerBudget = new HeaderBudget();
  private fields: (Uint8Array | undefined)[] = [];

  constructor(readonly input: CallInput, readonly log: CallLog = new CallLog()) {}

  field(id: number): Uint8Array | undefined {
    const cached = this.fields[id];
    if (cached) return cached;
    let value: Uint8Array | undefined;
    const i = this.input;
    if (id === Field.method) value = encoder.encode(i.method);
    else if (id === Field.path) value = encoder.encode(i.path);
    else if (id === Field.query) value = encoder.encode(i.query);
    else if (id === Field.body) value = i.body ?? new Uint8Array(0);
    else if (id === Field.headers) {
      let text = "";
      for (const [k, v] of i.headers) text += `${k}: ${v}\n`;
      value = encoder.encode(text);
    }
    this.fields[id] = value;
    return value;
  }

  outcome(): Outcome {
    const body = this.size === 0 ? null : concatBytes(this.chunks);
    return { kind: "response", status: this.status, headers: this.headers, body, logs: this.log.finish() };
  }
}

/** Memory access for host calls; re-reads the buffer because memory.grow detaches the old one. */
export class GuestMemory {
  memory?: WebAssembly.Memory;

  bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.memory!.buffer, ptr, len);
  }
  /** Short ASCII strings (header names, content types) skip TextDecoder, whose per-call cost dominates there. */
  string(ptr: number, len: number): string {
    const bytes = this.bytes(ptr, len);
    if (len <= 64) {
      let s = "";
      for (let i = 0; i < len; i++) {
        const c = bytes[i];
        if (c >= 0x80) return decoder.decode(bytes);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return decoder.decode(bytes);
  }
  /** Copies as much of `src` as fits into the guest buffer, in metered pieces; returns bytes copied. */
  copyOut(src: Uint8Array, ptr: number, len: number): number {
    const n = Math.min(len, src.length);
    for (let at = 0; at < n; at += COPY_PIECE) {
      const end = Math.min(n, at + COPY_PIECE);
      meter.charge(end - at);
      this.bytes(ptr + at, end - at).set(src.subarray(at, end));
    }
    return n;
  }
  /** Copies guest bytes out (the guest reuses its buffers), in metered pieces. */
  copyIn(ptr: number, len: number, into: Uint8Array[]): void {
    const view = this.bytes(ptr, len); // bounds-checked once: an out-of-range call traps before anything is kept
    for (let at = 0; at < len; at += COPY_PIECE) {
      const end = Math.min(len, at + COPY_PIECE);
      meter.charge(end - at);
      into.push(view.slice(at, end));
    }
  }
  /** An AssemblyScript string (UTF-16LE, byte length in the 4 bytes before it), cut at MAX_MESSAGE_BYTES. */
  asString(ptr: number): string {
    if (ptr === 0) return "";
    const len = new DataView(this.memory!.buffer).getUint32(ptr - 4, true);
    return utf16.decode(this.bytes(ptr, Math.min(len, MAX_MESSAGE_BYTES) & ~1));
  }
}

/** Imports of module `tau`, reading/writing the call state returned by `current()`. */
export function sdkImports(mem: GuestMemory, current: () => SdkCall): Record<string, (...a: never[]) => unknown> {
  const lookup = (value: string | null | undefined, outPtr: number, outLen: number): number => {
    if (value === null || value === undefined) return -1;
    const bytes = encoder.encode(value);
    mem.copyOut(bytes, outPtr, outLen);
    return bytes.length;
  };
  const name = (ptr: number, len: number): string | null => len > MAX_NAME_BYTES ? null : mem.string(ptr, len);
  return {
    req_len: (field: number) => current().field(field)?.length ?? -1,
    req_read: (field: number, ptr: number, len: number) => {
      const value = current().field(field);
      return value ? mem.copyOut(value, ptr, len) : -1;
    },
    header_get: (namePtr: number, nameLen: number, outPtr: number, outLen: number) => {
      let value: string | null = null;
      try {
        const key = name(namePtr, nameLen);
        if (key !== null) value = current().input.headers.get(key);
      } catch {
        value = null; // not a valid header name: it cannot be present
      }
      return lookup(value, outPtr, outLen);
    },
    param_get: (namePtr: number, nameLen: number, outPtr: number, outLen: number) => {
      const params = current().input.params;
      const key = name(namePtr, nameLen);
      return lookup(key !== null && Object.hasOwn(params, key) ? params[key] : null, outPtr, outLen);
    },
    resp_status: (code: number) => {
      current().status = code;
    },
    resp_header: (kPtr: number, kLen: number, vPtr: number, vLen: number) => {
      const call = current();
      call.headerBudget.add(kLen, vLen); // before decoding: a 1 GB "header" is refused, not read
      call.headers.push([mem.string(kPtr, kLen), mem.string(vPtr, vLen)]);
    },
    resp_write: (ptr: number, len: number) => {
      const call = current();
      if (call.size + len > MAX_RESPONSE_BYTES) throw new OutputTooLarge();
      mem.copyIn(ptr, len, call.chunks);
      call.size += len;
    },
    log: (ptr: number, len: number) => {
      current().log.line("log", mem.bytes(ptr, len));
    },
  };
}

/** `env` imports AssemblyScript modules expect: abort (=> trap with its message), trace (=> log), seed. */
export function assemblyScriptEnv(
  mem: GuestMemory,
  log: () => CallLog,
): Record<string, (...a: never[]) => unknown> {
  return {
    abort: (msg: number, file: number, line: number, col: number) => {
      const where = file ? ` at ${mem.asString(file)}:${line}:${col}` : "";
      throw new GuestAbort(`abort: ${mem.asString(msg) || "(no message)"}${where}`);
    },
    trace: (msg: number, n: number, ...values: number[]) => {
      log().text("log", `trace: ${mem.asString(msg)} ${values.slice(0, n).join(", ")}`.trim());
    },
    seed: () => Math.random() * 2 ** 52,
  };
}
