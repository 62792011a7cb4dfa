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
/** A body that stays within this many bytes of valid UTF-8 is kept as text (SdkCall.text). */
const TEXT_BODY_MAX = 64 * 1024;
/** Up to this many bytes, text is read from guest memory in JS rather than by TextDecoder (see GuestMemory.utf8). */
const SHORT_TEXT = 16;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function strictText(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}
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
  /**
   * The body while it is short valid UTF-8 (most small answers): kept as text read straight from guest memory, so
   * the hot path makes no byte copy (Deno sends a string body on its fastest path). A write that is not valid UTF-8
   * on its own, or past TEXT_BODY_MAX, turns it into bytes (see write()).
   */
  text = "";
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

  /** Appends guest bytes [ptr, ptr+len) to the body (bounds-checked: out of range traps before anything is kept). */
  write(mem: GuestMemory, ptr: number, len: number): void {
    if (this.chunks.length === 0) {
      const text = this.size + len <= TEXT_BODY_MAX ? mem.utf8(ptr, len) : undefined;
      if (text !== undefined) {
        meter.charge(len);
        this.text += text;
        this.size += len;
        return;
      }
      // From here on the body is bytes: what was text goes first (valid UTF-8 re-encodes to the same bytes).
      if (this.text) this.chunks.push(encoder.encode(this.text));
      this.text = "";
    }
    mem.copyIn(ptr, len, this.chunks);
    this.size += len;
  }

  outcome(): Outcome {
    const logs = this.log.finish();
    if (this.chunks.length === 0) {
      return { kind: "response", status: this.status, headers: this.headers, body: null, text: this.text, logs };
    }
    return { kind: "response", status: this.status, headers: this.headers, body: concatBytes(this.chunks), logs };
  }
}

/** Memory access for host calls; re-reads the buffer because memory.grow detaches the old one. */
export class GuestMemory {
  memory?: WebAssembly.Memory;
  /** A view of the whole memory, remade only when the buffer changes (a view per host call was a measurable cost). */
  #view?: Uint8Array;

  bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.memory!.buffer, ptr, len);
  }

  #whole(): Uint8Array {
    const buffer = this.memory!.buffer;
    let view = this.#view;
    if (view === undefined || view.buffer !== buffer) this.#view = view = new Uint8Array(buffer);
    return view;
  }

  /** A bounds-checked view of [ptr, ptr+len): out of range traps (RangeError) before anything is read. */
  #range(ptr: number, len: number): Uint8Array {
    const view = this.#whole();
    if (ptr < 0 || len < 0 || ptr + len > view.length) throw new RangeError("guest memory access out of bounds");
    return view;
  }

  /**
   * The bytes as text if they are valid UTF-8, else undefined. Short ones are read in JS: TextDecoder's fixed cost
   * per call (an op) is most of the work below ~16 bytes, and a loop is the slower one above (measured).
   */
  utf8(ptr: number, len: number): string | undefined {
    const view = this.#range(ptr, len);
    if (len <= SHORT_TEXT) {
      let s = "";
      for (let i = ptr; i < ptr + len; i++) {
        const c = view[i];
        if (c >= 0x80) return strictText(view.subarray(ptr, ptr + len));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return strictText(view.subarray(ptr, ptr + len));
  }

  /** Header names and values: invalid UTF-8 becomes U+FFFD (as before); short ASCII skips TextDecoder. */
  string(ptr: number, len: number): string {
    const view = this.#range(ptr, len);
    if (len <= SHORT_TEXT) {
      let s = "";
      for (let i = ptr; i < ptr + len; i++) {
        const c = view[i];
        if (c >= 0x80) return decoder.decode(view.subarray(ptr, ptr + len));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return decoder.decode(view.subarray(ptr, ptr + len));
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
      call.write(mem, ptr, len);
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
