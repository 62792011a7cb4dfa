/**
 * The cloud's replicated state as services see it: one interface, two implementations.
 * - ReplicaStore: this node holds a replica (it runs tns; `tau dev` always). Reads are local; a write is applied
 *   here, then pushed to every live replica (replicate.ts); the caller learns how many acknowledged.
 * - RemoteStore: this node holds none (a gateway/seer/substrate node): every call goes to a live tns node, failing
 *   over to the next one.
 * Services keep their keys under their own first key part ("tns", "auth", "patrick"...).
 * That is the cloud's control state (replicas on tns nodes). Functions' databases and storages are a second store of
 * the same kind with its own Deno KV root, RPC service and replica holders (hoarder nodes): services/data/store.ts.
 */
import { TauError } from "../../runtime/errors.ts";
import type { ServiceName } from "../config/services.ts";
import type { Directory } from "../p2p/directory.ts";
import type { RpcClient } from "../p2p/rpc.ts";
import type { Entry, Key } from "./entries.ts";
// Types only: replication (libp2p RPC, ~3 MB of modules) loads only on a node of a cloud.
import type { Replicator } from "./replicate.ts";
import type { ChangeListener, Kvdb, Listed } from "./store.ts";

export type { Entry, Key } from "./entries.ts";
export type { Listed } from "./store.ts";

/** The RPC service the control state's replicas answer on (`/tau/kvdb/1.0.0`). */
export const KVDB_SERVICE = "kvdb";

export interface WriteResult {
  entry: Entry;
  /** Replicas other than the writer that acknowledged the write (0 on a single node). */
  acks: number;
}

export interface StateStore {
  get<T>(key: Key): Promise<T | undefined>;
  getEntry(key: Key): Promise<Entry | undefined>;
  list<T>(prefix: Key, opts?: { reverse?: boolean; limit?: number }): Promise<Listed<T>[]>;
  set(key: Key, value: unknown): Promise<WriteResult>;
  delete(key: Key): Promise<WriteResult>;
  /** Values of several keys in one read (undefined where absent). */
  getMany(keys: Key[]): Promise<unknown[]>;
  /** Several writes applied together (one transaction on the replica that takes them), pushed as one. */
  setMany(items: { key: Key; value: unknown }[]): Promise<{ entries: Entry[]; acks: number }>;
  /**
   * Read `keys`, compute writes to some of them, apply them: one step on a replica (Kvdb.update). Through a node
   * without a replica it is a read then a write, which a concurrent writer elsewhere may interleave with.
   */
  update<R>(
    keys: Key[],
    compute: (values: unknown[]) => { writes: { key: Key; value: unknown }[]; result: R },
  ): Promise<R>;
  /** Changes applied to the replica this store reads from (local writes and merged ones). */
  onChange(listener: ChangeListener): () => void;
  /** Changes whenever anything in the store does (caches compare it). */
  fingerprint(): Promise<bigint>;
}

export class ReplicaStore implements StateStore {
  constructor(readonly db: Kvdb, private replicator?: Replicator) {}

  attach(replicator: Replicator): void {
    this.replicator = replicator;
  }

  get<T>(key: Key) {
    return this.db.get<T>(key);
  }
  getEntry(key: Key) {
    return this.db.getEntry(key);
  }
  list<T>(prefix: Key, opts?: { reverse?: boolean; limit?: number }) {
    return this.db.list<T>(prefix, opts);
  }
  async set(key: Key, value: unknown): Promise<WriteResult> {
    const entry = await this.db.set(key, value);
    return { entry, acks: (await this.replicator?.push([entry])) ?? 0 };
  }
  async delete(key: Key): Promise<WriteResult> {
    const entry = await this.db.delete(key);
    return { entry, acks: (await this.replicator?.push([entry])) ?? 0 };
  }
  getMany(keys: Key[]) {
    return this.db.getMany(keys);
  }
  async setMany(items: { key: Key; value: unknown }[]) {
    const entries = await this.db.setMany(items);
    return { entries, acks: (await this.replicator?.push(entries)) ?? 0 };
  }
  async update<R>(keys: Key[], compute: (values: unknown[]) => { writes: { key: Key; value: unknown }[]; result: R }) {
    const { entries, result } = await this.db.update(keys, compute);
    if (entries.length) await this.replicator?.push(entries);
    return result;
  }
  onChange(listener: ChangeListener) {
    return this.db.onChange(listener);
  }
  fingerprint() {
    return Promise.resolve(this.db.fingerprint());
  }
}

export interface RemoteStoreOptions {
  /** The RPC service the replicas answer on; default KVDB_SERVICE. */
  service?: string;
  /** The directory service whose nodes hold the replicas; default "tns". */
  replicaService?: ServiceName;
}

export class RemoteStore implements StateStore {
  readonly #listeners = new Set<ChangeListener>();
  readonly #service: string;
  readonly #holders: ServiceName;
  constructor(private readonly rpc: RpcClient, private readonly directory: Directory, opts: RemoteStoreOptions = {}) {
    this.#service = opts.service ?? KVDB_SERVICE;
    this.#holders = opts.replicaService ?? "tns";
  }

  async #call<T>(method: string, params: unknown): Promise<T> {
    const peers = this.directory.peersFor(this.#holders);
    if (peers.length === 0) {
      throw new TauError(`no ${this.#holders} node is reachable`, {
        status: 503,
        hint: `start a node whose shape runs ${this.#holders}, or check this node's bootstrap peers`,
      });
    }
    let last: unknown;
    for (const p of peers) {
      try {
        return (await this.rpc.call(p.peer, this.#service, method, params)).result as T;
      } catch (err) {
        last = err;
        // An answer from the store itself (bad request) is final; only transport failures move to the next node.
        if (err instanceof TauError && err.status < 500) throw err;
      }
    }
    throw last;
  }

  async get<T>(key: Key) {
    return (await this.getEntry(key))?.value as T | undefined;
  }
  async getEntry(key: Key) {
    return (await this.#call<Entry | null>("get", { key })) ?? undefined;
  }
  list<T>(prefix: Key, opts: { reverse?: boolean; limit?: number } = {}) {
    return this.#call<Listed<T>[]>("list", { prefix, ...opts });
  }
  async set(key: Key, value: unknown): Promise<WriteResult> {
    const entry = await this.#call<Entry>("set", { key, value });
    this.#emit([entry]);
    return { entry, acks: 1 };
  }
  async delete(key: Key): Promise<WriteResult> {
    const entry = await this.#call<Entry>("delete", { key });
    this.#emit([entry]);
    return { entry, acks: 1 };
  }
  async getMany(keys: Key[]) {
    return (await this.#call<(Entry | null)[]>("getMany", { keys })).map((e) => e?.value);
  }
  async setMany(items: { key: Key; value: unknown }[]) {
    const entries = await this.#call<Entry[]>("setMany", { items });
    this.#emit(entries);
    return { entries, acks: 1 };
  }
  async update<R>(keys: Key[], compute: (values: unknown[]) => { writes: { key: Key; value: unknown }[]; result: R }) {
    const { writes, result } = compute(await this.getMany(keys));
    if (writes.length) await this.setMany(writes);
    return result;
  }
  onChange(listener: ChangeListener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  /** Remote changes are announced by the events layer (tns events); this carries the ones made through here. */
  #emit(entries: Entry[]) {
    for (const l of this.#listeners) l(entries);
  }
  async fingerprint() {
    return BigInt(await this.#call<bigint>("fingerprint", null));
  }
}
