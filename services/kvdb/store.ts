/**
 * One replica of a replicated store: entries (entries.ts) persisted in the node's Deno KV under [root, ...key] (root
 * "kvdb" for the cloud's control state, "userdata" for functions' data), merged by version, with a digest per
 * anti-entropy bucket kept up to date so two replicas find what they differ in by comparing 256 numbers. Replication
 * itself (push on write, anti-entropy) is replicate.ts; `tau dev` uses a replica with nobody to replicate to.
 */
import { bucketOf, BUCKETS, type Entry, entryDigest, HybridClock, type Key, keyString, wins } from "./entries.ts";

/** The control state's root; a second store on the same Deno KV (user data) takes another. */
export const DEFAULT_ROOT = "kvdb";
/** Deno KV's own limit on a value is 64 KiB; refuse earlier with a clear message. */
export const MAX_VALUE_BYTES = 60 * 1024;
/** One merge transaction stays well inside Deno KV's bounds (1000 mutations, 800 KiB). */
const TX_MAX_MUTATIONS = 100;
const TX_MAX_BYTES = 512 * 1024;

/**
 * A value's size as the limit means it: its JSON, except that bytes count as their length. JSON alone would count a
 * Uint8Array as {"0":..,"1":..} (up to 10 bytes a byte), while Deno KV and the CBOR wire both keep bytes as bytes.
 */
export function valueBytes(value: unknown): number {
  if (value instanceof Uint8Array) return value.byteLength;
  let bytes = 0;
  const json = JSON.stringify(value, (_key, v) => {
    if (v instanceof Uint8Array) {
      bytes += v.byteLength - 1; // stands in the JSON as the one character "0"
      return 0;
    }
    return v;
  });
  return bytes + (json === undefined ? 0 : new TextEncoder().encode(json).length);
}

export interface KvdbOptions {
  kv: Deno.Kv;
  /** This node's id in versions (its peer id; "local" for tau dev). */
  writer: string;
  /** The Deno KV key prefix its entries live under; default DEFAULT_ROOT. Two stores on one KV need two roots. */
  root?: string;
}

export type ChangeListener = (changed: Entry[]) => void;

/** A live entry as listed: its key, value and version (hybrid clock time, counter, writer). */
export interface Listed<T> {
  key: Key;
  value: T;
  version: [number, number, string];
}

/** The error for a value the store does not keep (over MAX_VALUE_BYTES), or undefined. */
function oversize(key: Key, value: unknown): Error | undefined {
  const size = valueBytes(value);
  return size > MAX_VALUE_BYTES
    ? new Error(`value for ${key.join("/")} is ${size} bytes; the store keeps at most ${MAX_VALUE_BYTES}`)
    : undefined;
}

export class Kvdb {
  readonly #kv: Deno.Kv;
  readonly #root: string;
  readonly #clock: HybridClock;
  readonly #digests = new Array<bigint>(BUCKETS).fill(0n);
  readonly #listeners = new Set<ChangeListener>();
  /** Serialises merges: a read-compare-write per key must not interleave with another for the same key. */
  #chain: Promise<unknown> = Promise.resolve();
  /** Counts applied changes; caches compare it to know whether anything moved. */
  version = 0;

  private constructor(opts: KvdbOptions) {
    this.#kv = opts.kv;
    this.#root = opts.root ?? DEFAULT_ROOT;
    this.#clock = new HybridClock(opts.writer);
  }

  static async open(opts: KvdbOptions): Promise<Kvdb> {
    const db = new Kvdb(opts);
    for await (const e of db.#kv.list<Entry>({ prefix: [db.#root] })) {
      db.#clock.observe(e.value);
      db.#digests[bucketOf(e.value.key)] ^= await entryDigest(e.value);
    }
    return db;
  }

  get writer(): string {
    return this.#clock.writer;
  }

  async getEntry(key: Key): Promise<Entry | undefined> {
    return (await this.#kv.get<Entry>([this.#root, ...key])).value ?? undefined;
  }

  /** Several entries in one read (Deno KV reads at most 10 keys at once). */
  async #getMany(keys: Key[]): Promise<(Entry | undefined)[]> {
    const out: (Entry | undefined)[] = [];
    for (let i = 0; i < keys.length; i += 10) {
      const got = await this.#kv.getMany<Entry[]>(keys.slice(i, i + 10).map((k) => [this.#root, ...k]));
      for (const g of got) out.push(g.value ?? undefined);
    }
    return out;
  }

  /** Several values in one read. */
  async getMany(keys: Key[]): Promise<unknown[]> {
    return (await this.#getMany(keys)).map((e) => e?.value);
  }

  async get<T>(key: Key): Promise<T | undefined> {
    return (await this.getEntry(key))?.value as T | undefined;
  }

  /** Live entries under `prefix`, in key order (reverse: newest ids first when ids sort by time). */
  async list<T>(prefix: Key, opts: { reverse?: boolean; limit?: number } = {}): Promise<Listed<T>[]> {
    const out: Listed<T>[] = [];
    for await (const e of this.#kv.list<Entry>({ prefix: [this.#root, ...prefix] }, { reverse: opts.reverse })) {
      if (e.value.value === undefined) continue;
      out.push({ key: e.value.key, value: e.value.value as T, version: [e.value.t, e.value.c, e.value.w] });
      if (opts.limit && out.length >= opts.limit) break;
    }
    return out;
  }

  /** A local write. Returns the entry as stored (for first-wins keys: possibly an earlier claim that still holds). */
  set(key: Key, value: unknown): Promise<Entry> {
    const tooBig = oversize(key, value);
    if (tooBig) return Promise.reject(tooBig);
    return this.#write({ key, value, ...this.#clock.next() });
  }

  delete(key: Key): Promise<Entry> {
    return this.#write({ key, ...this.#clock.next() });
  }

  /**
   * Several local writes applied together: one Deno KV transaction, so a reader never sees one without the others
   * (a database entry and its size counter). Returns the entries as stored, in order.
   */
  setMany(items: { key: Key; value: unknown }[]): Promise<Entry[]> {
    for (const { key, value } of items) {
      const tooBig = oversize(key, value);
      if (tooBig) return Promise.reject(tooBig);
    }
    return this.#writeMany(items.map(({ key, value }) => ({ key, value, ...this.#clock.next() })));
  }

  /**
   * Read, compute, write as one step: `compute` gets the values of `keys` (undefined where absent) and returns the
   * writes, all to keys among them; nothing else merges in between (merges are serialised), and the writes go in
   * one transaction. One read and one write, where get-then-set would read twice (measured: a database put).
   */
  update<R>(
    keys: Key[],
    compute: (values: unknown[]) => { writes: { key: Key; value: unknown }[]; result: R },
  ): Promise<{ entries: Entry[]; result: R }> {
    const run = this.#chain.then(async () => {
      const currents = await this.#getMany(keys);
      const { writes, result } = compute(currents.map((e) => e?.value));
      const index = new Map(keys.map((k, i) => [keyString(k), i]));
      const entries: Entry[] = [];
      for (const { key, value } of writes) {
        if (!index.has(keyString(key))) throw new Error(`update wrote ${key.join("/")}, which it did not read`);
        const tooBig = oversize(key, value);
        if (tooBig) throw tooBig;
        entries.push({ key, value, ...this.#clock.next() });
      }
      const known = new Map(keys.map((k, i) => [keyString(k), currents[i]]));
      return { entries: await this.#apply(entries, (k) => known.get(keyString(k))), result };
    });
    this.#chain = run.catch(() => {});
    return run;
  }

  async #write(entry: Entry): Promise<Entry> {
    return (await this.#writeMany([entry]))[0];
  }

  async #writeMany(entries: Entry[]): Promise<Entry[]> {
    const applied = await this.merge(entries);
    const same = (a: Entry, b: Entry) =>
      a.t === b.t && a.c === b.c && a.w === b.w && keyString(a.key) === keyString(b.key);
    // A local write wins unless the key is first-wins and already claimed: only then is what holds read back.
    return await Promise.all(
      entries.map(async (e) => applied.find((a) => same(a, e)) ?? (await this.getEntry(e.key))!),
    );
  }

  /** Merge entries from anywhere; returns the ones that changed this replica (listeners see the same list). */
  merge(entries: Entry[]): Promise<Entry[]> {
    const run = this.#chain.then(() => this.#merge(entries));
    this.#chain = run.catch(() => {});
    return run;
  }

  async #merge(entries: Entry[]): Promise<Entry[]> {
    const valid = entries.filter((e) => Array.isArray(e.key) && e.key.every((k) => typeof k === "string"));
    for (const e of valid) this.#clock.observe(e);
    // The current entries in one read, the winners in one transaction (merges are serialised, so nothing interleaves).
    const currents = await this.#getMany(valid.map((e) => e.key));
    const known = new Map(valid.map((e, i) => [keyString(e.key), currents[i]]));
    return await this.#apply(valid, (k) => known.get(keyString(k)));
  }

  /** Applies entries over the current ones `currentOf` gives (read in the same serialised step). */
  async #apply(valid: Entry[], currentOf: (key: Key) => Entry | undefined): Promise<Entry[]> {
    const latest = new Map<string, Entry | undefined>();
    const winners: { entry: Entry; current?: Entry }[] = [];
    valid.forEach((incoming) => {
      const id = keyString(incoming.key);
      const current = latest.has(id) ? latest.get(id) : currentOf(incoming.key);
      if (!wins(incoming, current)) return;
      const entry: Entry = { key: incoming.key, t: incoming.t, c: incoming.c, w: incoming.w };
      if (incoming.value !== undefined) entry.value = incoming.value;
      latest.set(id, entry);
      winners.push({ entry, current });
    });
    // Deno KV bounds one transaction (mutations, bytes): a big anti-entropy merge goes in several.
    for (let i = 0; i < winners.length;) {
      let tx = this.#kv.atomic();
      let bytes = 0;
      for (let n = 0; i < winners.length && n < TX_MAX_MUTATIONS && bytes < TX_MAX_BYTES; i++, n++) {
        tx = tx.set([this.#root, ...winners[i].entry.key], winners[i].entry);
        bytes += valueBytes(winners[i].entry.value) + 256;
      }
      await tx.commit();
    }
    const applied: Entry[] = [];
    for (const { entry, current } of winners) {
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
    for await (const e of this.#kv.list<Entry>({ prefix: [this.#root] })) {
      if (bucketOf(e.value.key) === n) out.push(e.value);
    }
    return out;
  }

  /** Entries of several buckets in one scan. */
  async buckets(ns: number[]): Promise<Map<number, Entry[]>> {
    const want = new Set(ns);
    const out = new Map<number, Entry[]>(ns.map((n) => [n, []]));
    for await (const e of this.#kv.list<Entry>({ prefix: [this.#root] })) {
      const b = bucketOf(e.value.key);
      if (want.has(b)) out.get(b)!.push(e.value);
    }
    return out;
  }
}

export { keyString };
