/**
 * The cloud's replicated state as services see it: one interface, two implementations.
 * - ReplicaStore: this node holds a replica (it runs tns; `tau dev` always). Reads are local; a write is applied
 *   here, then pushed to every live replica (replicate.ts); the caller learns how many acknowledged.
 * - RemoteStore: this node holds none (a gateway/seer/substrate node): every call goes to a live tns node, failing
 *   over to the next one.
 * Services keep their keys under their own first key part ("tns", "auth", "patrick"...).
 */
import { TauError } from "../../runtime/errors.ts";
import type { Directory } from "../p2p/directory.ts";
import type { RpcClient } from "../p2p/rpc.ts";
import type { Entry, Key } from "./entries.ts";
import { KVDB_SERVICE, type Replicator } from "./replicate.ts";
import type { ChangeListener, Kvdb, Listed } from "./store.ts";

export type { Entry, Key } from "./entries.ts";
export type { Listed } from "./store.ts";

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
  onChange(listener: ChangeListener) {
    return this.db.onChange(listener);
  }
  fingerprint() {
    return Promise.resolve(this.db.fingerprint());
  }
}

export class RemoteStore implements StateStore {
  readonly #listeners = new Set<ChangeListener>();
  constructor(private readonly rpc: RpcClient, private readonly directory: Directory) {}

  async #call<T>(method: string, params: unknown): Promise<T> {
    const peers = this.directory.peersFor("tns");
    if (peers.length === 0) {
      throw new TauError("no tns node is reachable", {
        status: 503,
        hint: "start a node whose shape runs tns, or check this node's bootstrap peers",
      });
    }
    let last: unknown;
    for (const p of peers) {
      try {
        return (await this.rpc.call(p.peer, KVDB_SERVICE, method, params)).result as T;
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
