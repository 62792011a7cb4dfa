/**
 * The limits every data call checks before it touches a store, and how other failures reach the guest. Guest input is
 * checked here, once, so each backend can assume well-formed names and bytes, and every refusal is one line naming
 * the limit it hit.
 */
import { HostError } from "../../runtime/wasm/host/services.ts";
import { MAX_VALUE_BYTES } from "../kvdb/store.ts";

export { MAX_VALUE_BYTES };
/** Database keys and global names: they are key parts, and Deno KV keeps a whole key under 2 KiB. */
export const MAX_KEY_BYTES = 1024;
/** Storage file names (Taubyte's paths can be long; still a key part). */
export const MAX_FILE_BYTES = 512;
/** Database and storage names a function opens: key parts too, next to a 1 KiB key. */
export const MAX_NAME_BYTES = 256;

const encoder = new TextEncoder();
export const utf8Length = (s: string) => encoder.encode(s).length;

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${+(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${+(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** A database or storage name the guest opened. */
export function checkName(kind: "database" | "storage", name: unknown): string {
  if (typeof name !== "string" || name.length === 0) throw new HostError("invalid", `a ${kind} name must be non-empty`);
  const n = utf8Length(name);
  if (n > MAX_NAME_BYTES) {
    throw new HostError("invalid", `${kind} name "${name.slice(0, 40)}..." is ${n} bytes; at most ${MAX_NAME_BYTES}`);
  }
  return name;
}

/** A database key or a global's name: 1..MAX_KEY_BYTES bytes of UTF-8. */
export function checkKey(what: string, key: unknown): string {
  if (typeof key !== "string" || key.length === 0) throw new HostError("invalid", `${what} must be non-empty`);
  const n = utf8Length(key);
  if (n > MAX_KEY_BYTES) {
    throw new HostError("invalid", `${what} "${key.slice(0, 40)}..." is ${n} bytes; at most ${MAX_KEY_BYTES}`);
  }
  return key;
}

export function checkFile(storage: string, file: unknown): string {
  if (typeof file !== "string" || file.length === 0) {
    throw new HostError("invalid", `a file name in storage "${storage}" must be non-empty`);
  }
  if (file.includes("\0")) throw new HostError("invalid", `file name ${JSON.stringify(file)} contains a NUL byte`);
  const n = utf8Length(file);
  if (n > MAX_FILE_BYTES) {
    throw new HostError("invalid", `file name "${file.slice(0, 40)}..." is ${n} bytes; at most ${MAX_FILE_BYTES}`);
  }
  return file;
}

export function checkBytes(what: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new HostError("invalid", `${what} must be bytes`);
  return value;
}

/** A value kept in the replicated store itself (database entries, globals): under its per-value limit. */
export function checkValue(what: string, value: unknown): Uint8Array {
  const bytes = checkBytes(what, value);
  if (bytes.length > MAX_VALUE_BYTES) {
    throw new HostError(
      "too-large",
      `${what} is ${bytes.length} bytes; a value may be at most ${MAX_VALUE_BYTES} bytes (${
        formatBytes(MAX_VALUE_BYTES)
      })`,
    );
  }
  return bytes;
}

/**
 * Stored values come back as Uint8Array from Deno KV and over the CBOR wire; a plain array or a Buffer-like copy
 * is accepted too, so a value written by some other path still reads as bytes.
 */
export function asBytes(value: unknown): Uint8Array | null {
  if (value === undefined || value === null) return null;
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return Uint8Array.from(value as number[]);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return null;
}

/** Any failure as the guest sees it: a HostError stays one; a store or network failure is "failed". */
export function toHostError(err: unknown): HostError {
  if (err instanceof HostError) return err;
  return new HostError("failed", err instanceof Error ? err.message : String(err));
}

/** The same ops with every failure turned into a HostError (an errno for the guest, a line for its log). */
export function guarded<T extends object>(ops: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(ops)) {
    out[name] = typeof fn !== "function" ? fn : async (...args: unknown[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        throw toHostError(err);
      }
    };
  }
  return out as T;
}
