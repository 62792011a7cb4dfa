/**
 * Just enough of the wasm binary format to read and rewrite memory limits, size a module's code and data, and
 * append a custom section. Binaryen's JS API can only replace a memory together with all its data segments, so the
 * memory maximum is patched here on the emitted bytes instead.
 */

const SECTION_CUSTOM = 0;
const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;
const SECTION_START = 8;
const SECTION_CODE = 10;
const SECTION_DATA = 11;
const IMPORT_KIND_MEMORY = 2;
const LIMIT_SHARED = 2;
const LIMIT_64 = 4;

export interface MemoryInfo {
  imported: boolean;
  count: number;
  initialPages: number;
  maximumPages?: number;
  shared: boolean;
  memory64: boolean;
}

class Reader {
  pos: number;
  constructor(readonly bytes: Uint8Array, pos = 0) {
    this.pos = pos;
  }
  byte(): number {
    if (this.pos >= this.bytes.length) throw new Error("unexpected end of module");
    return this.bytes[this.pos++];
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
    throw new Error("malformed LEB128");
  }
  s32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) === 0) return shift < 32 && (b & 0x40) ? result | (-1 << shift) : result;
    }
    throw new Error("malformed LEB128");
  }
  u64(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
    throw new Error("malformed LEB128");
  }
  skip(n: number) {
    this.pos += n;
  }
  name(): string {
    const len = this.u32();
    const s = new TextDecoder().decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
}

interface Section {
  id: number;
  start: number; // offset of the id byte
  contentStart: number;
  end: number;
}

function sections(bytes: Uint8Array): Section[] {
  const r = new Reader(bytes, 8);
  const out: Section[] = [];
  while (r.pos < bytes.length) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const contentStart = r.pos;
    r.skip(size);
    out.push({ id, start, contentStart, end: contentStart + size });
  }
  return out;
}

/** Limits: flag bit0 = has max, bit1 = shared, bit2 = memory64. */
function readLimits(r: Reader): { min: number; max?: number; flags: number } {
  const flags = r.byte();
  const wide = (flags & 4) !== 0;
  const min = wide ? r.u64() : r.u32();
  const max = (flags & 1) ? (wide ? r.u64() : r.u32()) : undefined;
  return { min, max, flags };
}

function skipImportDesc(r: Reader, kind: number) {
  switch (kind) {
    case 0: // func: type index
      r.u32();
      return;
    case 1: // table: reftype + limits
      r.byte();
      readLimits(r);
      return;
    case 2:
      readLimits(r);
      return;
    case 3: // global: valtype + mut
      r.byte();
      r.byte();
      return;
    case 4: // tag: attribute + type index
      r.byte();
      r.u32();
      return;
    default:
      throw new Error(`unknown import kind ${kind}`);
  }
}

/** Memory facts of a module: whether it imports its memory, how many it has, initial and maximum pages. */
export function memoryInfo(bytes: Uint8Array): MemoryInfo {
  const info: MemoryInfo = { imported: false, count: 0, initialPages: 0, shared: false, memory64: false };
  const note = (flags: number) => {
    info.shared ||= (flags & LIMIT_SHARED) !== 0;
    info.memory64 ||= (flags & LIMIT_64) !== 0;
  };
  for (const s of sections(bytes)) {
    if (s.id === SECTION_IMPORT) {
      const r = new Reader(bytes, s.contentStart);
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === IMPORT_KIND_MEMORY) {
          const lim = readLimits(r);
          note(lim.flags);
          info.imported = true;
          info.count++;
          info.initialPages = lim.min;
          info.maximumPages = lim.max;
        } else skipImportDesc(r, kind);
      }
    } else if (s.id === SECTION_MEMORY) {
      const r = new Reader(bytes, s.contentStart);
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const lim = readLimits(r);
        note(lim.flags);
        if (info.count === 0) {
          info.initialPages = lim.min;
          info.maximumPages = lim.max;
        }
        info.count++;
      }
    }
  }
  return info;
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Rewrites the (single, defined, 32-bit) memory's maximum to `maxPages`, keeping its minimum. */
export function setMemoryMaximum(bytes: Uint8Array, maxPages: number): Uint8Array {
  const mem = sections(bytes).find((s) => s.id === SECTION_MEMORY);
  if (!mem) return bytes;
  const r = new Reader(bytes, mem.contentStart);
  if (r.u32() !== 1) throw new Error("expected exactly one memory");
  const lim = readLimits(r);
  if (lim.flags & 4) throw new Error("64-bit memories are not supported");
  const shared = lim.flags & 2;
  const content = [1, ...[1 | shared], ...leb(lim.min), ...leb(maxPages)];
  const head = [SECTION_MEMORY, ...leb(content.length)];
  const out = new Uint8Array(mem.start + head.length + content.length + (bytes.length - mem.end));
  out.set(bytes.subarray(0, mem.start), 0);
  out.set(head, mem.start);
  out.set(content, mem.start + head.length);
  out.set(bytes.subarray(mem.end), mem.start + head.length + content.length);
  return out;
}

/** What instantiating and first calling a module costs besides its metered code: the biggest function to compile
 * and the data copied into memory on every instantiation (bounded by the data section's size). */
export function codeFacts(bytes: Uint8Array): { largestFunctionBytes: number; dataSectionBytes: number } {
  let largestFunctionBytes = 0;
  let dataSectionBytes = 0;
  for (const s of sections(bytes)) {
    if (s.id === SECTION_DATA) dataSectionBytes += s.end - s.contentStart;
    if (s.id !== SECTION_CODE) continue;
    const r = new Reader(bytes, s.contentStart);
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const size = r.u32();
      largestFunctionBytes = Math.max(largestFunctionBytes, size);
      r.skip(size);
    }
  }
  return { largestFunctionBytes, dataSectionBytes };
}

/** Names of the module's custom sections. */
export function customSectionNames(bytes: Uint8Array): string[] {
  return sections(bytes).filter((s) => s.id === SECTION_CUSTOM).map((s) => new Reader(bytes, s.contentStart).name());
}

/** Appends a custom section (custom sections may appear anywhere; engines ignore what they do not know). */
export function appendCustomSection(bytes: Uint8Array, name: string, payload: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const content = [...leb(nameBytes.length), ...nameBytes, ...payload];
  const head = [SECTION_CUSTOM, ...leb(content.length)];
  const out = new Uint8Array(bytes.length + head.length + content.length);
  out.set(bytes, 0);
  out.set(head, bytes.length);
  out.set(content, bytes.length + head.length);
  return out;
}

const OP_I32_CONST = 0x41;
const OP_END = 0x0b;

/**
 * What instantiation writes into memory, as sorted, merged [offset, length] ranges, when that is only the active data
 * segments (a start function may write anything: undefined then, as for an offset that is not a constant).
 */
export function dataImage(bytes: Uint8Array): [number, number][] | undefined {
  const ranges: [number, number][] = [];
  for (const s of sections(bytes)) {
    if (s.id === SECTION_START) return undefined;
    if (s.id !== SECTION_DATA) continue;
    const r = new Reader(bytes, s.contentStart);
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const flags = r.u32();
      if (flags === 1) { // passive: written by memory.init only
        r.skip(r.u32());
        continue;
      }
      if ((flags !== 0 && flags !== 2) || (flags === 2 && r.u32() !== 0)) return undefined;
      if (r.byte() !== OP_I32_CONST) return undefined;
      const offset = r.s32() >>> 0;
      if (r.byte() !== OP_END) return undefined;
      const length = r.u32();
      r.skip(length);
      if (length > 0) ranges.push([offset, length]);
    }
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [offset, length] of ranges) {
    const last = merged[merged.length - 1];
    if (last && offset <= last[0] + last[1]) last[1] = Math.max(last[1], offset + length - last[0]);
    else merged.push([offset, length]);
  }
  return merged;
}
