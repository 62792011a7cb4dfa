/**
 * One replica of the cloud's replicated store: entries (entries.ts) persisted in the node's Deno KV under
 * ["kvdb", ...key], merged by version, with a digest per anti-entropy bucket kept up to date so two replicas find
 * what they differ in by comparing 256 numbers. Replication itself (push on write, anti-entropy) is replicate.ts;
 * `tau dev` uses a replica with nobody to replicate to.
 */
import { bucketOf, BUCKETS, type Entry, entryDigest, HybridClock, type Key, keyString, wins } from "./entries.ts";

const ROOT = "kvdb";
/** Deno KV's own limit on a value is 64 KiB; refuse earlier with a clear message. */
export const MAX_VALUE_BYTES = 60 * 1024;

export interface KvdbOptions {
  kv: Deno.Kv;
  /** This node's id in versions (its peer id; "local" for tau dev). */
  writer: string;
}

export type ChangeListener = (changed: Entry[]) => void;

/** A live entry as listed: its key, value and version (hybrid clock time, counter, writer). */
export interface Listed<T> {
  key: Key;
  value: T;
  version: [number, number, string];
}

export class Kvdb {
  readonly #kv: Deno.Kv;
  readonly #clock: HybridClock;
  readonly #digests = new Array<bigint>(BUCKETS).fill(0n);
  readonly #listeners = new Set<ChangeListener>();
  /** Serialises merges: a read-compare-write per key must not interleave with another for the same key. */
  #chain: Promise<unknown> = Promise.resolve();
  /** Counts applied changes; caches compare it to know whether anything moved. */
  version = 0;

  private constructor(opts: KvdbOptions) {
    this.#kv = opts.kv;
    this.#clock = new HybridClock(opts.writer);
  }

  static async open(opts: KvdbOptions): Promise<Kvdb> {
    const db = new Kvdb(opts);
    for await (const e of db.#kv.list<Entry>({ prefix: [ROOT] })) {
      db.#clock.observe(e.value);
      db.#digests[bucketOf(e.value.key)] ^= await entryDigest(e.value);
    }
    return db;
  }

  get writer(): string {
    return this.#clock.writer;
  }

  async getEntry(key: Key): Promise<Entry | undefined> {
    return (await this.#kv.get<Entry>([ROOT, ...key])).value ?? undefined;
  }

  async get<T>(key: Key): Promise<T | undefined> {
    return (await this.getEntry(key))?.value as T | undefined;
  }

  /** Live entries under `prefix`, in key order (reverse: newest ids first when ids sort by time). */
  async list<T>(prefix: Key, opts: { reverse?: boolean; limit?: number } = {}): Promise<Listed<T>[]> {
    const out: Listed<T>[] = [];
    for await (const e of this.#kv.list<Entry>({ prefix: [ROOT, ...prefix] }, { reverse: opts.reverse })) {
      if (e.value.value === undefined) continue;
      out.push({ key: e.value.key, value: e.value.value as T, version: [e.value.t, e.value.c, e.value.w] });
      if (opts.limit && out.length >= opts.limit) break;
    }
    return out;
  }

  /** A local write. Returns the entry as stored (for first-wins keys: possibly an earlier claim that still holds). */
  set(key: Key, value: unknown): Promise<Entry> {
    const size = new TextEncoder().encode(JSON.stringify(value)).length;
    if (size > MAX_VALUE_BYTES) {
      return Promise.reject(
        new Error(`value for ${key.join("/")} is ${size} bytes; the store keeps at most ${MAX_VALUE_BYTES}`),
      );
    }
    return this.#write({ key, value, ...this.#clock.next() });
  }

  delete(key: Key): Promise<Entry> {
    return this.#write({ key, ...this.#clock.next() });
  }

  async #write(entry: Entry): Promise<Entry> {
    await this.merge([entry]);
    return (await this.getEntry(entry.key))!;
  }

  /** Merge entries from anywhere; returns the ones that changed this replica (listeners see the same list). */
  merge(entries: Entry[]): Promise<Entry[]> {
    const run = this.#chain.then(() => this.#merge(entries));
    this.#chain = run.catch(() => {});
    return run;
  }

  async #merge(entries: Entry[]): Promise<Entry[]> {
    const applied: Entry[] = [];
    for (const incoming of entries) {
      if (!Array.isArray(incoming.key) || incoming.key.some((k) => typeof k !== "string")) continue;
      this.#clock.observe(incoming);
      const current = await this.getEntry(incoming.key);
      if (!wins(incoming, current)) continue;
      const entry: Entry = { key: incoming.key, t: incoming.t, c: incoming.c, w: incoming.w };
      if (incoming.value !== undefined) entry.value = incoming.value;
      await this.#kv.set([ROOT, ...entry.key], entry);
      const bucket = bucketOf(entry.key);
      if (current) this.#digests[bucket] ^= await entryDigest(current);
      this.#digests[bucket] ^= await entryDigest(entry);
      applied.push(entry);
    }
    if (applied.length) {
      this.version++;
      for (const l of this.#listeners) {
        try {
          l(applied);
        } catch { /* a listener's failure is its own */ }
      }
    }
    return applied;
  }

  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** One number per bucket; equal arrays mean equal replicas. */
  digests(): bigint[] {
    return [...this.#digests];
  }

  /** XOR of every bucket: one number that changes whenever anything does. */
  fingerprint(): bigint {
    return this.#digests.reduce((a, b) => a ^ b, 0n);
  }

  /** Every entry (tombstones included) in a bucket, for anti-entropy. */
  async bucket(n: number): Promise<Entry[]> {
    const out: Entry[] = [];
    // A full scan per bucket: stores here hold thousands of entries, not millions; an index per bucket would double
    // every write.
    for await (const e of this.#kv.list<Entry>({ prefix: [ROOT] })) {
      if (bucketOf(e.value.key) === n) out.push(e.value);
    }
    return out;
  }

  /** Entries of several buckets in one scan. */
  async buckets(ns: number[]): Promise<Map<number, Entry[]>> {
    const want = new Set(ns);
    const out = new Map<number, Entry[]>(ns.map((n) => [n, []]));
    for await (const e of this.#kv.list<Entry>({ prefix: [ROOT] })) {
      const b = bucketOf(e.value.key);
      if (want.has(b)) out.get(b)!.push(e.value);
    }
    return out;
  }
}

export { keyString };
