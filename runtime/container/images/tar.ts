/**
 * Streaming tar reader (ustar, pax and GNU long names): enough for image layers and image archives.
 * Entries must be consumed in order; an unread body is skipped when the next entry is requested.
 */
import fs from "node:fs";
import { Readable, type Transform } from "node:stream";
import zlib from "node:zlib";
import { concatBytes } from "../../bytes.ts";

export interface TarEntry {
  name: string;
  type: "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo" | "other";
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
}

/** Pulls exact byte counts out of a stream; `onChunk` sees every byte (for hashing). */
export class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf = new Uint8Array(0);
  #off = 0;
  constructor(stream: ReadableStream<Uint8Array>, private onChunk?: (c: Uint8Array) => void) {
    this.#reader = stream.getReader();
  }
  async #fill(): Promise<boolean> {
    const { value, done } = await this.#reader.read();
    if (done) return false;
    this.onChunk?.(value);
    const rest = this.#buf.subarray(this.#off);
    const next = new Uint8Array(rest.length + value.length);
    next.set(rest);
    next.set(value, rest.length);
    this.#buf = next;
    this.#off = 0;
    return true;
  }
  /** Up to `max` bytes (at least 1) or null at end of stream. */
  async chunk(max: number): Promise<Uint8Array | null> {
    if (this.#off >= this.#buf.length && !(await this.#fill())) return null;
    const n = Math.min(max, this.#buf.length - this.#off);
    const out = this.#buf.subarray(this.#off, this.#off + n);
    this.#off += n;
    return out;
  }
  async exact(n: number): Promise<Uint8Array | null> {
    while (this.#buf.length - this.#off < n) if (!(await this.#fill())) return null;
    const out = this.#buf.slice(this.#off, this.#off + n);
    this.#off += n;
    return out;
  }
  async skip(n: number): Promise<void> {
    while (n > 0) {
      const c = await this.chunk(n);
      if (!c) throw new Error("tar: unexpected end of archive");
      n -= c.length;
    }
  }
  /** Reads to the end (a layer's digest covers the trailing zero blocks too). */
  async drain(): Promise<void> {
    while (await this.chunk(1 << 20)) { /* hashing happens in onChunk */ }
  }
}

const dec = new TextDecoder();

function str(b: Uint8Array, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const end = s.indexOf(0);
  return dec.decode(end < 0 ? s : s.subarray(0, end));
}

function num(b: Uint8Array, off: number, len: number): number {
  if (b[off] & 0x80) {
    // GNU base-256 for large values
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i];
    return v;
  }
  const s = str(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function parsePax(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const bytes = new TextEncoder().encode(text);
  while (i < bytes.length) {
    const sp = bytes.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(dec.decode(bytes.subarray(i, sp)), 10);
    if (!len) break;
    const rec = dec.decode(bytes.subarray(sp + 1, i + len - 1));
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

const TYPES: Record<string, TarEntry["type"]> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

export interface TarStream {
  entries(): AsyncGenerator<TarEntry>;
  /** Body of the current file entry, in chunks. */
  body(): AsyncGenerator<Uint8Array>;
  bytes(): Promise<Uint8Array>;
  reader: ByteReader;
}

export function readTar(reader: ByteReader): TarStream {
  let remaining = 0;
  let padding = 0;
  async function finishCurrent() {
    await reader.skip(remaining + padding);
    remaining = padding = 0;
  }
  async function readBody(size: number): Promise<string> {
    const b = await reader.exact(size);
    await reader.skip((512 - (size % 512)) % 512);
    if (!b) throw new Error("tar: unexpected end of archive");
    return str(b, 0, b.length);
  }
  return {
    reader,
    async *entries() {
      let longName: string | undefined;
      let longLink: string | undefined;
      let pax: Record<string, string> = {};
      for (;;) {
        await finishCurrent();
        const h = await reader.exact(512);
        if (!h || h.every((x) => x === 0)) return;
        const flag = String.fromCharCode(h[156]);
        const size = num(h, 124, 12);
        if (flag === "L" || flag === "K") {
          const v = await readBody(size);
          if (flag === "L") longName = v;
          else longLink = v;
          continue;
        }
        if (flag === "x" || flag === "g") {
          const rec = parsePax(await readBody(size));
          if (flag === "x") pax = rec;
          continue;
        }
        const magic = str(h, 257, 6);
        const prefix = magic.startsWith("ustar") ? str(h, 345, 155) : "";
        let name = str(h, 0, 100);
        if (prefix) name = `${prefix}/${name}`;
        const entry: TarEntry = {
          name: pax.path ?? longName ?? name,
          type: TYPES[flag] ?? "other",
          mode: num(h, 100, 8),
          uid: pax.uid ? Number(pax.uid) : num(h, 108, 8),
          gid: pax.gid ? Number(pax.gid) : num(h, 116, 8),
          size: pax.size ? Number(pax.size) : size,
          mtime: pax.mtime ? Number(pax.mtime) : num(h, 136, 12),
          linkname: pax.linkpath ?? longLink ?? str(h, 157, 100),
        };
        longName = longLink = undefined;
        pax = {};
        const dataSize = entry.type === "file" || entry.type === "other" ? entry.size : 0;
        remaining = dataSize;
        padding = (512 - (dataSize % 512)) % 512;
        yield entry;
      }
    },
    async *body() {
      while (remaining > 0) {
        const c = await reader.chunk(remaining);
        if (!c) throw new Error("tar: unexpected end of archive");
        remaining -= c.length;
        yield c;
      }
    },
    async bytes() {
      const parts: Uint8Array[] = [];
      for await (const c of this.body()) parts.push(c.slice());
      return concatBytes(parts);
    },
  };
}

/**
 * Opens a file as a byte stream, transparently decompressing gzip (magic 1f 8b) and zstd (28 b5 2f fd, the OCI
 * `+zstd` layer media types). Web streams have no zstd, node:zlib does.
 */
export async function openMaybeGzip(path: string): Promise<ReadableStream<Uint8Array>> {
  const f = await Deno.open(path);
  const head = new Uint8Array(4);
  const n = await f.read(head) ?? 0;
  await f.seek(0, Deno.SeekMode.Start);
  if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    return f.readable.pipeThrough(new DecompressionStream("gzip"));
  }
  if (n >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) {
    f.close();
    // Deno's node:zlib has zstd; the bundled Node type declarations predate it.
    const { createZstdDecompress } = zlib as unknown as { createZstdDecompress(): Transform };
    return Readable.toWeb(fs.createReadStream(path).pipe(createZstdDecompress())) as ReadableStream<Uint8Array>;
  }
  return f.readable;
}
