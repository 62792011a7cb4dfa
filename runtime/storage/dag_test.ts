import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { openContentStore } from "./helia.ts";

Deno.test("content store: has() checks the whole DAG, not the root block; deleting blocks frees exactly those", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tau-dag-" });
  const store = await openContentStore(dir);
  try {
    // 3 MiB of distinct chunks: several raw leaves under a dag-pb root
    const big = new Uint8Array(3 << 20);
    for (let at = 0; at < big.length; at += 65536) crypto.getRandomValues(big.subarray(at, at + 65536));
    const shared = new TextEncoder().encode("in both trees\n");
    const a = await store.addTree({ "index.html": new TextEncoder().encode("<h1>a</h1>"), "big.bin": big, shared });
    const b = await store.addTree({ "index.html": new TextEncoder().encode("<h1>b</h1>"), shared });
    assert(await store.has(a));
    const blocksA = await store.localBlocks(a);
    const bigFile = (await store.resolveFile(a, "big.bin"))!.cid;
    const bigBlocks = await store.localBlocks(bigFile);
    assert(bigBlocks.length >= 4, `big.bin is ${bigBlocks.length} blocks`);
    assertEquals(blocksA.length, 3 + bigBlocks.length); // the directory, two small files, big.bin's blocks
    const leaf = bigBlocks.find((c) => c !== bigFile)!;
    assertEquals(await store.deleteBlocks([leaf]), 1);
    assert(!(await store.has(a)), "a tree missing one leaf counts as present");
    assert(!(await store.has(bigFile)));
    assert(await store.has(b), "the other tree lost a block it does not have");
    assertEquals((await store.localBlocks(a)).length, blocksA.length - 1);
    await store.fetchDag(b); // whole already: nothing to fetch
    let refused = "";
    await store.fetchDag(a).catch((err) => (refused = err.message));
    assert(refused.includes("is not in this node's store"), refused);
    assertEquals(await store.deleteBlocks([leaf]), 0);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
