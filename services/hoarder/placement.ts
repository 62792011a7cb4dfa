/**
 * Where a CID is kept: rendezvous (highest random weight) hashing. Every node scores each candidate node for the CID
 * with the same hash and keeps the CID on the top `copies`; all nodes agree with no coordination, and a node joining
 * or leaving moves only the CIDs it ranks top for (about copies/n of them), to or from the next node in order.
 *
 * Candidates are the nodes running hoarder that are alive, or away for less than the grace period: a node that is
 * restarting keeps its place, so nothing is copied for a blip; one away longer drops out of every ranking and the
 * next node in order takes its CIDs.
 */
import type { DirectoryEntry } from "../p2p/directory.ts";

const encoder = new TextEncoder();
/** Scores are immutable per (cid, peer): kept so a reconcile pass hashes only what is new. */
const scores = new Map<string, bigint>();

async function score(cid: string, peer: string): Promise<bigint> {
  const key = `${cid}/${peer}`;
  let s = scores.get(key);
  if (s === undefined) {
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(key)));
    s = new DataView(hash.buffer).getBigUint64(0);
    if (scores.size > 200_000) scores.clear();
    scores.set(key, s);
  }
  return s;
}

/** Every peer, best ranked first for `cid` (ties, which SHA-256 makes vanishingly rare, by peer id). */
export async function rank(cid: string, peers: string[]): Promise<string[]> {
  const scored = await Promise.all(peers.map(async (peer) => ({ peer, s: await score(cid, peer) })));
  scored.sort((a, b) => (a.s < b.s ? 1 : a.s > b.s ? -1 : a.peer < b.peer ? -1 : 1));
  return scored.map((x) => x.peer);
}

/** The nodes that keep `cid`: the top `copies` of the candidates (all of them when fewer). */
export async function placement(cid: string, candidates: string[], copies: number): Promise<string[]> {
  return (await rank(cid, candidates)).slice(0, copies);
}

/** Hoarder nodes that count for placement at `now`: alive, or away for at most `graceMs`. */
export function candidates(entries: DirectoryEntry[], graceMs: number, now = Date.now()): string[] {
  return entries
    .filter((e) => e.services.includes("hoarder") && (e.alive || now - e.seen <= graceMs))
    .map((e) => e.peer)
    .sort();
}

/** Hoarder nodes that answer now. */
export function aliveHoarders(entries: DirectoryEntry[]): string[] {
  return entries.filter((e) => e.services.includes("hoarder") && e.alive).map((e) => e.peer).sort();
}
