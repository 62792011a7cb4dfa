/**
 * Rendezvous (highest random weight) choice: every node computes the same winner for a key from the same list of
 * candidates, without talking; when the winner leaves, the next one takes over and every other key keeps its choice.
 * patrick picks a project's builder with it, cron a tick's runner.
 */

/** A 53-bit hash of the pair (cyrb53): synchronous, so scan loops and event handlers decide at once. */
export function score(key: string, peer: string): number {
  const str = `${key}/${peer}`;
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The candidate with the highest score for `key` (ties: the smaller peer id); undefined when there is none. */
export function rendezvous(key: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined, bestScore = -1;
  for (const peer of candidates) {
    const sc = score(key, peer);
    if (sc > bestScore || (sc === bestScore && peer < best!)) [best, bestScore] = [peer, sc];
  }
  return best;
}
