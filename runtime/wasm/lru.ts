/** A small LRU map: Map keeps insertion order, so re-inserting on access makes the first key the oldest. */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();
  /** The most recently used key: getting it again needs no re-insert (the hot path asks for one key many times). */
  private newest?: K;
  constructor(private readonly capacity: number, private readonly onEvict?: (key: K, value: V) => void) {}

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined && key !== this.newest) {
      this.map.delete(key);
      this.map.set(key, value);
      this.newest = key;
    }
    return value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    this.newest = key;
    while (this.map.size > this.capacity) {
      const [oldKey, oldValue] = this.map.entries().next().value!;
      this.map.delete(oldKey);
      this.onEvict?.(oldKey, oldValue);
    }
  }

  delete(key: K): void {
    this.map.delete(key);
    if (key === this.newest) this.newest = undefined;
  }

  get size(): number {
    return this.map.size;
  }
}
