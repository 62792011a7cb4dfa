import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { candidates, placement, rank } from "./placement.ts";
import type { DirectoryEntry } from "../p2p/directory.ts";

const peers = ["12D3KooWa", "12D3KooWb", "12D3KooWc", "12D3KooWd", "12D3KooWe"];
const cids = Array.from({ length: 400 }, (_, i) => `bafkreicid${i}`);

Deno.test("placement: every node computes the same copies whatever order it lists candidates in", async () => {
  for (const cid of cids.slice(0, 50)) {
    const one = await placement(cid, peers, 3);
    const other = await placement(cid, [...peers].reverse(), 3);
    assertEquals(one, other);
    assertEquals(new Set(one).size, 3);
  }
  // fewer candidates than copies: all of them
  assertEquals((await placement(cids[0], peers.slice(0, 2), 3)).sort(), peers.slice(0, 2));
});

Deno.test("placement: a node leaving moves only its own CIDs, each to the next node in rank", async () => {
  const gone = peers[1];
  const rest = peers.filter((p) => p !== gone);
  let moved = 0;
  for (const cid of cids) {
    const before = await placement(cid, peers, 3);
    const after = await placement(cid, rest, 3);
    if (!before.includes(gone)) {
      assertEquals(after, before);
      continue;
    }
    moved++;
    const next = (await rank(cid, peers)).filter((p) => p !== gone)[2];
    assertEquals([...after].sort(), [...before.filter((p) => p !== gone), next].sort());
  }
  // each node is in about copies/n = 3/5 of the placements
  assert(moved > 0.45 * cids.length && moved < 0.75 * cids.length, `moved ${moved} of ${cids.length}`);
});

Deno.test("placement: load spreads evenly over nodes", async () => {
  const count = new Map<string, number>();
  for (const cid of cids) for (const p of await placement(cid, peers, 3)) count.set(p, (count.get(p) ?? 0) + 1);
  for (const p of peers) {
    const n = count.get(p) ?? 0;
    assert(n > 0.8 * 240 && n < 1.2 * 240, `${p} holds ${n} of 1200 copies`);
  }
});

Deno.test("candidates: hoarder nodes alive or away for less than the grace period", () => {
  const now = 1_000_000;
  const entry = (
    peer: string,
    alive: boolean,
    seenAgo: number,
    services = ["hoarder"],
  ) => ({ peer, alive, seen: now - seenAgo, services } as unknown as DirectoryEntry);
  const entries = [
    entry("a", true, 0),
    entry("b", false, 59_000),
    entry("c", false, 61_000),
    entry("d", true, 0, ["gateway"]),
  ];
  assertEquals(candidates(entries, 60_000, now), ["a", "b"]);
  assertEquals(candidates(entries, 0, now), ["a"]);
});
