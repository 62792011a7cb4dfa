/**
 * What the replicated store is made of: entries, each a key, a value (or a tombstone), and a version that orders
 * every write the same way on every node: a hybrid logical clock (wall ms, counter) and the writer's id to break
 * ties. Every key is last-writer-wins, so two replicas that hold the same set of writes hold the same state, whatever
 * order the writes arrived in. Rules that need more (who owns an FQDN) are computed by readers from the entries and
 * their versions, the same way on every node (see tns.ts).
 */
import { createHash } from "node:crypto";
import { encode } from "cborg";

export type Key = string[];

export interface Entry {
  key: Key;
  /** undefined: deleted (a tombstone, so a delete replicates like a write). */
  value?: unknown;
  /** Hybrid logical clock: wall time in ms, then a counter for writes within one ms. */
  t: number;
  c: number;
  /** Peer id (or "local") of the node that made the write. */
  w: string;
}

/** Negative when a is older than b. */
export function compareVersions(a: Entry, b: Entry): number {
  return a.t - b.t || a.c - b.c || (a.w < b.w ? -1 : a.w > b.w ? 1 : 0);
}

/** Whether `incoming` replaces `current`: the later version wins; equal versions are the same write. */
export function wins(incoming: Entry, current: Entry | undefined): boolean {
  return !current || compareVersions(incoming, current) > 0;
}

export class HybridClock {
  #t = 0;
  #c = 0;
  constructor(readonly writer: string) {}

  /** A version for a new local write, after every version seen so far. */
  next(): { t: number; c: number; w: string } {
    const now = Date.now();
    if (now > this.#t) {
      this.#t = now;
      this.#c = 0;
    } else {
      this.#c++;
    }
    return { t: this.#t, c: this.#c, w: this.writer };
  }

  /** Move past a version seen from another node, so later local writes order after it. */
  observe(e: { t: number; c: number }): void {
    if (e.t > this.#t || (e.t === this.#t && e.c > this.#c)) {
      this.#t = e.t;
      this.#c = e.c;
    }
  }
}

export const BUCKETS = 256;

export const keyString = (key: Key) => key.join("\u0000");

/** Which anti-entropy bucket a key falls in (FNV-1a of the key). */
export function bucketOf(key: Key): number {
  let h = 0x811c9dc5;
  const s = keyString(key);
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BUCKETS;
}

/** A 64-bit digest of one entry (key, version, value): equal entries give equal digests on every node. */
export function entryDigest(e: Entry): Promise<bigint> {
  const bytes = encode([e.key, e.t, e.c, e.w, e.value === undefined ? null : e.value, e.value === undefined]);
  // node:crypto's hash is synchronous: the same SHA-256 as crypto.subtle, without its hop to a thread pool, which
  // measured ~0.1 ms of every write (two digests each).
  const hash = createHash("sha256").update(bytes).digest();
  return Promise.resolve(new DataView(hash.buffer, hash.byteOffset, hash.byteLength).getBigUint64(0));
}
