import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Kvdb } from "./store.ts";
import type { Entry } from "./entries.ts";

async function replica(writer: string) {
  const kv = await Deno.openKv(":memory:");
  return { kv, db: await Kvdb.open({ kv, writer }) };
}

function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

Deno.test("replicas that saw the same writes in any order hold the same state and digests", async () => {
  const a = await replica("a");
  const b = await replica("b");
  const writes: Entry[] = [];
  for (let i = 0; i < 50; i++) {
    writes.push(await a.db.set(["k", String(i % 7)], { from: "a", i }));
    writes.push(await b.db.set(["k", String(i % 5)], { from: "b", i }));
    if (i % 9 === 0) writes.push(await a.db.delete(["k", String(i % 3)]));
  }
  const c = await replica("c");
  const d = await replica("d");
  await c.db.merge(shuffled(writes, 1));
  for (const e of shuffled(writes, 2)) await d.db.merge([e]);
  assertEquals(c.db.digests(), d.db.digests());
  assertEquals(await c.db.list(["k"]), await d.db.list(["k"]));
  for (const r of [a, b, c, d]) r.kv.close();
});

Deno.test("the later write wins on every replica, whatever order they arrive in", async () => {
  const a = await replica("a");
  const b = await replica("b");
  const first = await a.db.set(["k"], "first");
  await new Promise((r) => setTimeout(r, 2));
  const second = await b.db.set(["k"], "second");
  await a.db.merge([second]);
  await b.db.merge([first]);
  assertEquals(await a.db.get(["k"]), "second");
  assertEquals(await b.db.get(["k"]), "second");
  assertEquals(a.db.fingerprint(), b.db.fingerprint());
  a.kv.close();
  b.kv.close();
});

Deno.test("a replica persists: reopened, it holds the same entries and digests", async () => {
  const path = await Deno.makeTempFile({ suffix: ".kv" });
  let kv = await Deno.openKv(path);
  let db = await Kvdb.open({ kv, writer: "a" });
  await db.set(["x", "1"], 1);
  await db.set(["x", "2"], 2);
  const digests = db.digests();
  kv.close();
  kv = await Deno.openKv(path);
  db = await Kvdb.open({ kv, writer: "a" });
  assertEquals(db.digests(), digests);
  const later = await db.set(["x", "1"], 3);
  assertEquals(await db.get(["x", "1"]), 3, "a write after reopening orders after the old ones");
  assertEquals(later.w, "a");
  kv.close();
  await Deno.remove(path);
});

Deno.test("two stores on one Deno KV under different roots do not see each other's entries", async () => {
  const kv = await Deno.openKv(":memory:");
  const control = await Kvdb.open({ kv, writer: "a" });
  const user = await Kvdb.open({ kv, writer: "a", root: "userdata" });
  await control.set(["x"], "control");
  await user.set(["x"], "user");
  assertEquals(await control.get(["x"]), "control");
  assertEquals(await user.get(["x"]), "user");
  assertEquals((await user.list([])).length, 1);
  assertEquals((await Kvdb.open({ kv, writer: "a", root: "userdata" })).digests(), user.digests());
  kv.close();
});

Deno.test("bytes count as their length against the value limit, not as their JSON", async () => {
  const kv = await Deno.openKv(":memory:");
  const db = await Kvdb.open({ kv, writer: "a" });
  const bytes = new Uint8Array(50 * 1024).fill(200);
  await db.set(["b"], bytes);
  assertEquals(await db.get(["b"]), bytes);
  kv.close();
});
