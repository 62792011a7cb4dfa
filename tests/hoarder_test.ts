/**
 * Hoarder on a real cloud: separate `tau serve` processes on 127.0.0.41-.44, a project pushed to one of them.
 * Every CID a kept deployment needs ends on `copies` nodes chosen by rendezvous hashing; losing the node that built
 * it loses nothing; a node away past the grace period has its CIDs copied to the next node in rank, and drops back
 * out by the same rule when it returns; a rollback stays kept, a released deployment is swept everywhere and a
 * rollback to it fails clearly without changing what is live.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { commitAndPush, tau, waitForBuild } from "./helpers/cloud.ts";
import {
  type HoardCluster,
  HoardNode,
  HOST,
  newProject,
  startHoardCluster,
  waitUntil,
} from "./helpers/hoard_cluster.ts";
import { placement } from "../services/hoarder/placement.ts";
import type { HoarderStatus } from "../services/hoarder/hoarder.ts";

/** Who holds each CID, asking every running node. */
async function holdersByCid(nodes: HoardNode[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const n of nodes.filter((n) => n.running())) {
    const s = await n.api<HoarderStatus>("/api/hoarder");
    for (const h of s.held) out.set(h.cid, (out.get(h.cid) ?? new Set()).add(n.peer));
  }
  return out;
}

/** True when every CID `from` wants is held by exactly the nodes rendezvous hashing places it on. */
async function placedAsRanked(from: HoardNode, nodes: HoardNode[], copies: number): Promise<boolean> {
  const wanted = (await from.api<HoarderStatus>("/api/hoarder?pass=1")).wanted;
  if (wanted.length === 0) return false;
  const held = await holdersByCid(nodes);
  const peers = nodes.filter((n) => n.running()).map((n) => n.peer);
  for (const w of wanted) {
    const expected = await placement(w.cid, peers, copies);
    const got = [...(held.get(w.cid) ?? [])].sort();
    if (got.join() !== expected.sort().join()) return false;
  }
  return true;
}

/** The CIDs `node` currently wants, with the kept deployments that need each. */
async function wantedNow(node: HoardNode): Promise<Map<string, string[]>> {
  const s = await node.api<HoarderStatus>("/api/hoarder?pass=1");
  return new Map(s.wanted.map((w) => [w.cid, w.deployments]));
}

Deno.test("hoarder: 3 copies by rendezvous, kill -9 of the builder, re-replication after the grace period, rollback", async (t) => {
  const cloud: HoardCluster = await startHoardCluster({
    ips: ["127.0.0.41", "127.0.0.42", "127.0.0.43", "127.0.0.44"],
    hoarder: { copies: 3, grace: "2s", keep: 2 },
  });
  const [a, b, c, d] = cloud.nodes;
  const work = join(cloud.dir, "work");
  await Deno.mkdir(work);
  try {
    const p = await newProject(a, work, "hoardp");
    let v1 = "";
    await t.step("a publish waits for copies; every CID ends on the 3 nodes its rank picks", async () => {
      await Deno.writeTextFile(join(p.code, "websites/site/index.html"), "<h1>v1</h1>");
      await Deno.writeTextFile(join(p.code, "websites/site/shared.txt"), "the same in every version\n");
      await commitAndPush(p.code, "code v1");
      const commit = await commitAndPush(p.config, "config v1");
      const job = await waitForBuild(a.url, "hoardp", commit);
      assertEquals(job.status, "success", job.error);
      v1 = (job.deployment as unknown as { id: string }).id;
      const log = await tau(["logs", job.id, "--cloud", a.url]);
      assert(/hoarder: function hi, website site: [23] copies \(on /.test(log.stdout), log.stdout);
      assert(/hoarder: record: [23] copies/.test(log.stdout), log.stdout);

      await waitUntil("every wanted CID is on its 3 ranked nodes", 30_000, () => placedAsRanked(a, cloud.nodes, 3));
      const wanted = (await a.api<HoarderStatus>("/api/hoarder?pass=1")).wanted;
      const whats = new Set(wanted.map((w) => w.what));
      for (const what of ["record", "function hi", "website site", "build log"]) assert(whats.has(what), what);
      for (const n of cloud.nodes) {
        assertEquals((await n.get(HOST, "/")).text, "<h1>v1</h1>");
        const hi = await n.get(HOST, "/hi");
        assertEquals(hi.status, 200, hi.text);
      }
    });

    let placedBefore = new Map<string, string[]>();
    await t.step("kill -9 of the node that built it: the others still serve everything", async () => {
      for (const w of (await b.api<HoarderStatus>("/api/hoarder?pass=1")).wanted) placedBefore.set(w.cid, w.placement);
      await a.kill9();
      for (const n of [b, c, d]) {
        const site = await n.get(HOST, "/");
        assertEquals(site.text, "<h1>v1</h1>");
        assertEquals((await n.get(HOST, "/shared.txt")).text, "the same in every version\n");
        assertEquals((await n.get(HOST, "/hi")).status, 200);
      }
    });

    await t.step("past the grace period, its CIDs are copied to the next node in rank", async () => {
      await waitUntil(
        "every wanted CID is on 3 of the remaining nodes",
        45_000,
        () => placedAsRanked(b, cloud.nodes, 3),
      );
      const held = await holdersByCid(cloud.nodes);
      let moved = 0;
      for (const [cid, before] of placedBefore) {
        if (!before.includes(a.peer)) continue;
        moved++;
        assertEquals([...held.get(cid)!].sort(), [b.peer, c.peer, d.peer].sort());
      }
      assert(moved > 0, "node A held none of the CIDs: rendezvous placed everything elsewhere");
    });

    await t.step("the node comes back: it keeps its copies and the stand-in drops them", async () => {
      await a.start();
      await waitUntil("every wanted CID is back on its ranked nodes", 45_000, () => placedAsRanked(b, cloud.nodes, 3));
      placedBefore = new Map();
    });

    await t.step(
      "a rollback stays kept; a released deployment is swept everywhere; rolling back to it fails",
      async () => {
        await Deno.writeTextFile(join(p.code, "websites/site/index.html"), "<h1>v2</h1>");
        const v2 = await waitForBuild(a.url, "hoardp", await commitAndPush(p.code, "v2"));
        assertEquals(v2.status, "success", v2.error);
        const back = await tau(["rollback", "hoardp", "--cloud", a.url]);
        assertEquals(back.code, 0, back.stderr);
        for (const n of cloud.nodes) assertEquals((await n.get(HOST, "/")).text, "<h1>v1</h1>");
        await waitUntil(
          "v1 and v2 are both kept on their ranked nodes",
          30_000,
          () => placedAsRanked(a, cloud.nodes, 3),
        );
        const v1Cids = [...await wantedNow(a)].filter(([, ds]) => ds.includes(v1)).map(([cid]) => cid);
        assert(v1Cids.length >= 4, `v1 pins ${v1Cids}`); // record, function, website, build log

        // keep: 2 -> a third deployment releases v1 (neither current nor among the last two)
        await Deno.writeTextFile(join(p.code, "websites/site/index.html"), "<h1>v3</h1>");
        const v3 = await waitForBuild(a.url, "hoardp", await commitAndPush(p.code, "v3"));
        assertEquals(v3.status, "success", v3.error);
        const kept = await wantedNow(a);
        assert(![...kept.values()].some((ds) => ds.includes(v1)), "v1 is still kept");
        const released = v1Cids.filter((cid) => !kept.has(cid));
        // its record, its build log and its website tree; the function module is the same in v3
        assertEquals(released.length, 3, `released ${released}`);
        await waitUntil("v1's released CIDs are gone from every node", 30_000, async () => {
          for (const n of cloud.nodes) {
            for (const cid of released) {
              if ((await n.api<{ local: boolean }>(`/api/hoarder/has/${cid}`)).local) return false;
            }
          }
          return true;
        });
        for (const n of cloud.nodes) {
          assertEquals((await n.get(HOST, "/")).text, "<h1>v3</h1>");
          // a block v1 shared with v3 was not swept with it
          assertEquals((await n.get(HOST, "/shared.txt")).text, "the same in every version\n");
        }

        const refused = await tau(["rollback", "hoardp", "--to", v1, "--cloud", a.url]);
        assertEquals(refused.code, 1);
        assertStringIncludes(refused.stderr, `deployment ${v1} of hoardp/main is no longer kept`);
        assertStringIncludes(refused.stderr, "hint: ");
        for (const n of cloud.nodes) assertEquals((await n.get(HOST, "/")).text, "<h1>v3</h1>");
      },
    );
  } finally {
    await cloud.stop();
  }
});
