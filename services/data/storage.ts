/**
 * Object and streaming storages: a file's bytes are content (the node's ContentStore, so they are immutable, shared
 * when equal, and fetched from peers on a cloud); what a storage holds is a record per file in the user-data store,
 * listing its versions by CID (records.ts has the layout), and a counter of the bytes its kept versions take.
 *
 * - Object storage without versioning: an add replaces the file; its version stays 1.
 * - Object storage with versioning: each add is a new version (1, 2...); with `overwrite` it replaces the current one.
 *   At most MAX_VERSIONS are kept per file, the oldest dropped, so a record stays far under the store's 60 KiB value
 *   limit (a version is ~130 bytes of it).
 * - Streaming storage: each add is a new version that expires `ttlMs` after it was added. Expired versions are invisible
 *   at once and removed lazily, by whichever call next touches the file (or counts the storage); until then they
 *   still sit in the counter, so an add that looks over capacity recounts from the records before refusing.
 *
 * Every version holds a pin (services/hoarder/pins.ts, one entry per reference) so hoarder nodes keep its content;
 * dropping a version drops its pin, and content no pin (and no deployment) needs is released by the keepers.
 */
import type { ContentStore } from "../../runtime/storage/helia.ts";
import { HostError, type StorageOps } from "../../runtime/wasm/host/services.ts";
import { type ObjectPin, objectPinKey } from "../hoarder/pins.ts";
import type { Key, StateStore } from "../kvdb/mod.ts";
import type { Resolved } from "./bindings.ts";
import { checkBytes, checkFile, formatBytes } from "./limits.ts";
import {
  fileKey,
  type FileRecord,
  filesPrefix,
  type FileVersion,
  type Place,
  type StorageBinding,
  storageSizeKey,
  type Usage,
} from "./records.ts";
import { serialised } from "./serial.ts";

export const MAX_VERSIONS = 100;

export interface StorageDeps {
  store: StateStore;
  content: ContentStore;
  now: () => number;
}

type Bound = Resolved<StorageBinding>;

const expired = (v: FileVersion, t: number) => v.exp !== undefined && v.exp <= t;
const bytesOf = (rec: FileRecord | undefined) => rec?.versions.reduce((n, v) => n + v.size, 0) ?? 0;
/** The version `0` means: the recorded current one while it is kept, else the newest kept. */
const currentOf = (rec: FileRecord) =>
  rec.versions.some((v) => v.v === rec.current) ? rec.current : rec.versions.at(-1)?.v ?? null;
const pinRef = (p: Place, file: string, v: FileVersion) =>
  objectPinKey(v.cid, "storage", p.project, p.scope, p.name, file, String(v.v));
const label = (p: Place) => (p.scope ? `${p.scope}/${p.name}` : p.name);

export function storageOps(deps: StorageDeps, resolve: (name: string) => Bound): StorageOps {
  const { store, content, now } = deps;
  const locked = <T>(b: Bound, fn: () => Promise<T>) => serialised(store, storageSizeKey(b.place), fn);

  /**
   * Write a file's new state in one transaction: pins of new versions, the record, the counter, and the removal of
   * pins of versions gone (a hoarder never sees a version without its pin, nor a pin outlive its version). One write
   * where one per key cost ~4 ms an add (measured: bench/data_bench.ts).
   */
  async function commit(p: Place, file: string, before: FileRecord | undefined, after: FileRecord | undefined) {
    const id = (v: FileVersion) => `${v.v} ${v.cid}`;
    const had = new Set(before?.versions.map(id));
    const has = new Set(after?.versions.map(id));
    const writes: { key: Key; value: unknown }[] = [];
    for (const v of after?.versions ?? []) {
      if (had.has(id(v))) continue;
      const pin: ObjectPin = { what: `storage ${label(p)} file ${file} v${v.v}`, project: p.project };
      writes.push({ key: pinRef(p, file, v), value: pin });
    }
    if (after || before) writes.push({ key: fileKey(p, file), value: after }); // undefined: a tombstone
    for (const v of before?.versions ?? []) {
      if (!has.has(id(v))) writes.push({ key: pinRef(p, file, v), value: undefined });
    }
    const delta = bytesOf(after) - bytesOf(before);
    if (delta !== 0) {
      const used = (await store.get<Usage>(storageSizeKey(p)))?.bytes ?? 0;
      writes.push({ key: storageSizeKey(p), value: { bytes: Math.max(0, used + delta) } satisfies Usage });
    }
    if (writes.length) await store.setMany(writes);
  }

  const pruned = (rec: FileRecord, t: number): FileRecord | undefined => {
    const versions = rec.versions.filter((v) => !expired(v, t));
    return versions.length ? { ...rec, versions } : undefined;
  };

  /** (Locked) the file's record with expired versions removed, and removed from the store too. */
  async function settle(b: Bound, file: string): Promise<FileRecord | undefined> {
    const rec = await store.get<FileRecord>(fileKey(b.place, file));
    if (!rec) return undefined;
    const after = pruned(rec, now());
    if (after?.versions.length !== rec.versions.length) await commit(b.place, file, rec, after);
    return after;
  }

  /** A read: the record as it is, unless versions expired; then they are removed first (under the lock). */
  async function read(b: Bound, file: string): Promise<FileRecord | undefined> {
    const rec = await store.get<FileRecord>(fileKey(b.place, file));
    if (!rec || !rec.versions.some((v) => expired(v, now()))) return rec;
    return await locked(b, () => settle(b, file));
  }

  /**
   * (Locked) the bytes the storage's kept versions take, counted from its records (expired ones removed), and the
   * counter set to it: repairs whatever drift the counter gathered (serial.ts).
   */
  async function recount(b: Bound): Promise<number> {
    const t = now();
    const depth = filesPrefix(b.place).length;
    let used = 0;
    for (const e of await store.list<FileRecord>(filesPrefix(b.place))) {
      const after = pruned(e.value, t);
      if (after?.versions.length !== e.value.versions.length) await commit(b.place, e.key[depth], e.value, after);
      used += bytesOf(after);
    }
    const counted = (await store.get<Usage>(storageSizeKey(b.place)))?.bytes;
    if (counted !== used) await store.set(storageSizeKey(b.place), { bytes: used } satisfies Usage);
    return used;
  }

  function checkVersion(version: unknown): number {
    if (typeof version !== "number" || !Number.isInteger(version) || version < 0) {
      throw new HostError("invalid", `a version is a whole number (0 for the current one), not ${String(version)}`);
    }
    return version;
  }

  return {
    open(storage) {
      resolve(storage);
      return Promise.resolve();
    },

    add(storage, file, data, overwrite) {
      const b = resolve(storage);
      checkFile(storage, file);
      const bytes = checkBytes(`file "${file}" of storage "${storage}"`, data);
      return locked(b, async () => {
        const before = await settle(b, file);
        const t = now();
        const last = before?.last ?? 0;
        const kept = before?.versions ?? [];
        const make = (v: number): FileVersion => ({
          v,
          cid: "",
          size: bytes.length,
          at: t,
          ...(b.binding.type === "streaming" ? { exp: t + (b.binding.ttlMs ?? 0) } : {}),
        });
        let added: FileVersion;
        let versions: FileVersion[];
        if (b.binding.type === "object" && !b.binding.versioning) {
          versions = [added = make(1)];
        } else if (b.binding.type === "object" && overwrite && before) {
          added = make(currentOf(before)!);
          versions = kept.map((v) => (v.v === added.v ? added : v));
        } else {
          versions = [...kept, added = make(last + 1)].slice(-MAX_VERSIONS);
        }
        const after: FileRecord = { versions, current: added.v, last: Math.max(last, added.v) };
        const delta = bytesOf(after) - bytesOf(before);
        const capacity = b.binding.sizeBytes;
        let used = (await store.get<Usage>(storageSizeKey(b.place)))?.bytes ?? 0;
        // Over by the counter: count again from the records (expired versions, drift) before refusing.
        if (delta > 0 && used + delta > capacity) used = await recount(b);
        if (delta > 0 && used + delta > capacity) {
          throw new HostError(
            "too-large",
            `storage "${storage}" would hold ${
              used + delta
            } bytes with this file, over its size of ${capacity} bytes ` +
              `(${formatBytes(capacity)}); ${used} are used`,
          );
        }
        added.cid = await content.addBytes(bytes);
        await commit(b.place, file, before, after);
        return added.v;
      });
    },

    async get(storage, file, version) {
      const b = resolve(storage);
      checkFile(storage, file);
      const rec = await read(b, file);
      if (!rec) return null;
      const wanted = checkVersion(version) === 0 ? currentOf(rec) : version;
      const v = rec.versions.find((x) => x.v === wanted);
      if (!v) return null;
      try {
        return await content.cat(v.cid);
      } catch (err) {
        throw new HostError(
          "failed",
          `file "${file}" v${v.v} of storage "${storage}": its content ${v.cid} cannot be read: ${
            (err as Error).message
          }`,
        );
      }
    },

    async versions(storage, file) {
      const b = resolve(storage);
      checkFile(storage, file);
      return (await read(b, file))?.versions.map((v) => v.v) ?? [];
    },

    async current(storage, file) {
      const b = resolve(storage);
      checkFile(storage, file);
      const rec = await read(b, file);
      return rec ? currentOf(rec) : null;
    },

    delete(storage, file, version, all) {
      const b = resolve(storage);
      checkFile(storage, file);
      checkVersion(version);
      return locked(b, async () => {
        const before = await settle(b, file);
        if (!before) throw new HostError("not-found", `storage "${storage}" has no file "${file}"`);
        if (all) return await commit(b.place, file, before, undefined);
        const target = version === 0 ? currentOf(before) : version;
        if (!before.versions.some((v) => v.v === target)) {
          throw new HostError("not-found", `file "${file}" of storage "${storage}" has no version ${version}`);
        }
        const versions = before.versions.filter((v) => v.v !== target);
        const after = versions.length
          ? { ...before, versions, current: target === before.current ? versions.at(-1)!.v : before.current }
          : undefined;
        await commit(b.place, file, before, after);
      });
    },

    async files(storage) {
      const b = resolve(storage);
      const depth = filesPrefix(b.place).length;
      const names: string[] = [];
      let stale = false;
      const t = now();
      for (const e of await store.list<FileRecord>(filesPrefix(b.place))) {
        if (e.value.versions.some((v) => expired(v, t))) stale = true;
        if (e.value.versions.some((v) => !expired(v, t))) names.push(e.key[depth]);
      }
      // Listing found expired versions: remove them now, so the next listing (and the counter) is clean.
      if (stale) await locked(b, () => recount(b));
      return names.sort();
    },

    async cid(storage, file) {
      const b = resolve(storage);
      checkFile(storage, file);
      const rec = await read(b, file);
      if (!rec) return null;
      const current = currentOf(rec);
      return rec.versions.find((v) => v.v === current)?.cid ?? null;
    },

    async usage(storage) {
      const b = resolve(storage);
      const capacity = b.binding.sizeBytes;
      // A streaming storage's counter still holds versions that expired since: count them out.
      if (b.binding.type === "streaming") return { used: await locked(b, () => recount(b)), capacity };
      return { used: (await store.get<Usage>(storageSizeKey(b.place)))?.bytes ?? 0, capacity };
    },
  };
}
