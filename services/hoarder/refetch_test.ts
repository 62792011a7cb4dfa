/**
 * Two nodes' content stores over real libp2p (in one process): a DAG fetched from a peer, deleted, and fetched
 * again, as a hoarder does when it takes back a CID it dropped (runtime/storage/bitswap_rewant.ts is why it works).
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { startP2p } from "../p2p/node.ts";
import { newIdentity } from "../p2p/keys.ts";
import { openContentStore } from "../../runtime/storage/helia.ts";

Deno.test({
  name: "content store: a DAG fetched from a peer, deleted, and fetched again comes back",
  // libp2p leaves unref'd timers behind after stop
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tau-refetch-" });
    const nodes = await Promise.all(
      ["127.0.0.51", "127.0.0.52"].map(async (ip) =>
        await startP2p({ identity: await newIdentity(), listen: [`/ip4/${ip}/tcp/0`], bootstrap: [] })
      ),
    );
    const stores = await Promise.all(nodes.map((n, i) => openContentStore(`${dir}/${i}`, { libp2p: n.libp2p })));
    try {
      const bytes = new Uint8Array(3 << 20);
      for (let at = 0; at < bytes.length; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
      const cid = await stores[0].addBytes(bytes);
      await nodes[1].connect(nodes[0].addresses());
      for (let round = 0; round < 3; round++) {
        const got = await stores[1].fetchDag(cid, { signal: AbortSignal.timeout(10_000) });
        assertEquals(got.fetchedBytes > bytes.length, true);
        assertEquals(await stores[1].has(cid), true);
        assertEquals(await stores[1].deleteBlocks(await stores[1].localBlocks(cid)), got.blocks);
      }
    } finally {
      for (const s of stores) await s.close();
      for (const n of nodes) await n.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
