import { join } from "node:path";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { assert, assertEquals, assertMatch, assertRejects } from "../../tests/helpers/assert.ts";
import { type ContentStore, openContentStore } from "../../runtime/storage/helia.ts";
import { HostError, type HostErrorCode } from "../../runtime/wasm/host/services.ts";
import type { StateStore } from "../kvdb/mod.ts";
import { parseProjectConfig } from "../../runtime/schema/mod.ts";
import { bindFunctionData } from "./bindings.ts";
import {
  type DatabaseBinding,
  databaseBindingsOf,
  dbSizeKey,
  type StorageBinding,
  storageBindingsOf,
} from "./records.ts";
import { openUserDataStore } from "./store.ts";

const KiB = 1024;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

const databases: DatabaseBinding[] = [
  { name: "users", id: "d1", match: "users", regex: false, sizeBytes: 1000 },
  { name: "per_user", id: "d2", match: "user_[0-9]+", regex: true, sizeBytes: 1 << 20 },
  { name: "big", id: "d3", match: "big", regex: false, sizeBytes: 200 * KiB },
  { name: "broken", id: "d4", match: "(", regex: true, sizeBytes: 1000 },
  // refused by tau validate; a record written before that check matches nothing rather than stall the thread
  { name: "slow", id: "d8", match: "(a+)+$", regex: true, sizeBytes: 1000 },
  { name: "cache", app: "shop", id: "d5", match: "cache", regex: false, sizeBytes: 1 << 20 },
  // the shop application has a "users" of its own: it shadows the project's for shop's functions
  { name: "users", app: "shop", id: "d6", match: "users", regex: false, sizeBytes: 1000 },
  { name: "posts", app: "blog", id: "d7", match: "posts", regex: false, sizeBytes: 1 << 20 },
];

const storages: StorageBinding[] = [
  { name: "files", id: "s1", match: "files", regex: false, type: "object", versioning: true, sizeBytes: 1000 },
  { name: "plain", id: "s2", match: "plain", regex: false, type: "object", versioning: false, sizeBytes: 1000 },
  {
    name: "stream",
    id: "s3",
    match: "stream",
    regex: false,
    type: "streaming",
    versioning: false,
    ttlMs: 1000,
    sizeBytes: 1000,
  },
  {
    name: "media",
    app: "shop",
    id: "s4",
    match: "media_.*",
    regex: true,
    type: "object",
    versioning: false,
    sizeBytes: 1000,
  },
];

interface Env {
  dir: string;
  store: StateStore;
  content: ContentStore;
  clock: { t: number };
  bind(who: { app?: string; functionId: string }): ReturnType<typeof bindFunctionData>;
  close(): Promise<void>;
}

/** A node's data services on a fresh (or reopened) data dir: real Deno KV, real content store, no network. */
async function open(dir?: string): Promise<Env> {
  dir ??= await Deno.makeTempDir({ prefix: "tau-data-" });
  const kv = await Deno.openKv(join(dir, "node.kv"));
  const { store } = await openUserDataStore({ kv, writer: "local" });
  const content = await openContentStore(join(dir, "storage"));
  const clock = { t: 1_000_000 };
  return {
    dir,
    store,
    content,
    clock,
    bind: (who) =>
      bindFunctionData({ store, content, now: () => clock.t }, { project: "p", ...who, databases, storages }),
    async close() {
      await content.close();
      kv.close();
    },
  };
}

async function withEnv(fn: (env: Env) => Promise<void>) {
  const env = await open();
  try {
    await fn(env);
  } finally {
    await env.close();
    await Deno.remove(env.dir, { recursive: true });
  }
}

async function rejects(fn: () => Promise<unknown>, code: HostErrorCode, message?: RegExp) {
  await assertRejects(fn, (e) => {
    assert(e instanceof HostError, `expected a HostError, got ${e}`);
    assertEquals(e.code, code, e.message);
    if (message) assertMatch(e.message, message);
    assert(!e.message.includes("\n"), "one line");
  });
}

const top = { functionId: "f_top" };
const shop = { app: "shop", functionId: "f_shop" };
const blog = { app: "blog", functionId: "f_blog" };

Deno.test("databases: put, get, list by prefix, delete", () =>
  withEnv(async (env) => {
    const { database: db } = env.bind(top);
    await db.open("user_1");
    await db.put("user_1", "b/2", bytes("two"));
    await db.put("user_1", "a/1", bytes("one"));
    await db.put("user_1", "b/1", bytes("three"));
    assertEquals(text(await db.get("user_1", "a/1")), "one");
    assertEquals(await db.get("user_1", "missing"), null);
    assertEquals(await db.list("user_1", "b/"), ["b/1", "b/2"]);
    assertEquals(await db.list("user_1", ""), ["a/1", "b/1", "b/2"]);
    await db.delete("user_1", "b/1");
    await db.delete("user_1", "never-there");
    assertEquals(await db.list("user_1", ""), ["a/1", "b/2"]);
    assertEquals(await db.get("user_1", "b/1"), null);
    assertEquals(await env.bind(top).database.list("user_2", ""), [], "another name is another database");
    await rejects(() => db.put("user_1", "", bytes("x")), "invalid");
    await rejects(() => db.get("user_1", "k".repeat(1025)), "invalid", /1024/);
  }));

Deno.test("databases: an application's resources are its own; the project's are everyone's", () =>
  withEnv(async (env) => {
    const s = env.bind(shop).database;
    const b = env.bind(blog).database;
    const t = env.bind(top).database;
    await s.put("cache", "k", bytes("shop's"));
    assertEquals(text(await env.bind({ app: "shop", functionId: "f_other" }).database.get("cache", "k")), "shop's");
    await rejects(
      () => b.open("cache"),
      "unbound",
      /^database "cache" matches no database resource of project p \(app blog\)$/,
    );
    await rejects(() => t.get("cache", "k"), "unbound", /^database "cache" matches no database resource of project p$/);
    // "users": the project's for blog and top-level functions, shop's own for shop's
    await t.put("users", "u", bytes("project"));
    assertEquals(text(await b.get("users", "u")), "project");
    assertEquals(await s.get("users", "u"), null);
    await s.put("users", "u", bytes("shop"));
    assertEquals(text(await t.get("users", "u")), "project");
    await rejects(() => s.open("posts"), "unbound");
  }));

Deno.test("databases: exact and regex matches (anchored); a broken or exponential regex matches nothing", () =>
  withEnv(async (env) => {
    const db = env.bind(top).database;
    await db.open("users");
    await db.open("user_12");
    await rejects(() => db.open("user_x"), "unbound");
    await rejects(() => db.open("xuser_1"), "unbound");
    await rejects(() => db.open("user_1x"), "unbound");
    await rejects(() => db.open("users2"), "unbound");
    await rejects(() => db.open("("), "unbound");
    await rejects(() => db.open(""), "invalid");
    // exponential for a backtracking engine: never run, so this answers at once
    await rejects(() => db.open("a".repeat(40) + "!"), "unbound");
  }));

Deno.test("databases: a value over 60 KiB, or a database over its storage.size, is refused and nothing is lost", () =>
  withEnv(async (env) => {
    const db = env.bind(top).database;
    await db.put("big", "k".repeat(1024), new Uint8Array(60 * KiB).fill(7)); // the largest value, the longest key
    assertEquals((await db.get("big", "k".repeat(1024)))!.length, 60 * KiB);
    await rejects(
      () => db.put("big", "x", new Uint8Array(60 * KiB + 1)),
      "too-large",
      /61441 bytes.*61440 bytes \(60 KiB\)/,
    );
    assertEquals(await db.list("big", "x"), []);

    await db.put("users", "a", new Uint8Array(599)); // 600 with its key
    await db.put("users", "b", new Uint8Array(299)); // 900
    await rejects(
      () => db.put("users", "c", new Uint8Array(200)),
      "too-large",
      /^database "users" would hold 1101 bytes with this put, over its storage.size of 1000 bytes .*900 are used$/,
    );
    assertEquals(await db.list("users", ""), ["a", "b"]);
    assertEquals((await db.get("users", "a"))!.length, 599);
    // a put that shrinks the database, and one that fills it exactly, are fine
    await db.put("users", "a", new Uint8Array(99)); // 400
    await db.put("users", "c", new Uint8Array(599)); // 1000
    assertEquals(await env.store.get(dbSizeKey({ project: "p", scope: "", name: "users" })), { bytes: 1000 });
  }));

Deno.test("databases: the size counter stays exact through overwrites, deletes and 20 concurrent puts", () =>
  withEnv(async (env) => {
    const db = env.bind(top).database;
    const used = async () =>
      (await env.store.get<{ bytes: number }>(dbSizeKey({ project: "p", scope: "", name: "user_7" })))?.bytes;
    await db.put("user_7", "key", new Uint8Array(10)); // 13
    await db.put("user_7", "key", new Uint8Array(4)); // 7
    assertEquals(await used(), 7);
    await db.delete("user_7", "key");
    assertEquals(await used(), 0);
    // parallel requests: 10 distinct keys, and 10 puts racing on one key
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => db.put("user_7", `k${i}`, new Uint8Array(100 + i))),
      ...Array.from({ length: 10 }, (_, i) => db.put("user_7", "same", new Uint8Array(50 + i))),
    ]);
    let expected = 0;
    for (const key of await db.list("user_7", "")) expected += key.length + (await db.get("user_7", key))!.length;
    assertEquals(await used(), expected);
    assertEquals((await db.get("user_7", "same"))!.length, 59, "the last put on a key wins");
  }));

Deno.test("object storage: versions, overwrite, delete one or all, files, cid, usage", () =>
  withEnv(async (env) => {
    const st = env.bind(top).storage;
    assertEquals(await st.add("files", "a.txt", bytes("one"), false), 1);
    assertEquals(await st.add("files", "a.txt", bytes("two!"), false), 2);
    assertEquals(await st.add("files", "a.txt", bytes("three"), false), 3);
    assertEquals(await st.versions("files", "a.txt"), [1, 2, 3]);
    assertEquals(await st.current("files", "a.txt"), 3);
    assertEquals(text(await st.get("files", "a.txt", 0)), "three");
    assertEquals(text(await st.get("files", "a.txt", 1)), "one");
    assertEquals(await st.get("files", "a.txt", 9), null);
    assertEquals(await st.get("files", "nope", 0), null);
    assertEquals(await st.add("files", "a.txt", bytes("THREE"), true), 3, "overwrite replaces the current version");
    assertEquals(text(await st.get("files", "a.txt", 3)), "THREE");
    assertEquals(await st.cid("files", "a.txt"), await env.content.addBytes(bytes("THREE")));
    assertEquals(await st.usage("files"), { used: 12, capacity: 1000 });
    // every kept version holds a pin, so hoarders keep it
    const pins = async () => (await env.store.list(["hoarder", "objects"])).map((e) => e.key.slice(-2).join(" v"));
    assertEquals((await pins()).sort(), ["a.txt v1", "a.txt v2", "a.txt v3"]);

    await st.delete("files", "a.txt", 2, false);
    assertEquals(await st.versions("files", "a.txt"), [1, 3]);
    await st.delete("files", "a.txt", 0, false); // the current one
    assertEquals(await st.versions("files", "a.txt"), [1]);
    assertEquals(await st.current("files", "a.txt"), 1);
    assertEquals(await st.add("files", "a.txt", bytes("four"), false), 4, "a deleted number is not given again");
    await rejects(() => st.delete("files", "a.txt", 2, false), "not-found");
    await st.add("files", "b.txt", bytes("b"), false);
    assertEquals(await st.files("files"), ["a.txt", "b.txt"]);
    await st.delete("files", "a.txt", 0, true);
    assertEquals(await st.files("files"), ["b.txt"]);
    assertEquals(await st.versions("files", "a.txt"), []);
    assertEquals(await st.current("files", "a.txt"), null);
    assertEquals(await st.cid("files", "a.txt"), null);
    assertEquals(await st.usage("files"), { used: 1, capacity: 1000 });
    assertEquals(await pins(), ["b.txt v1"]);
    await rejects(() => st.delete("files", "a.txt", 0, true), "not-found");

    // not versioned: an add replaces, version 1 always
    assertEquals(await st.add("plain", "p", bytes("first"), false), 1);
    assertEquals(await st.add("plain", "p", bytes("second"), false), 1);
    assertEquals(await st.versions("plain", "p"), [1]);
    assertEquals(text(await st.get("plain", "p", 0)), "second");
    assertEquals(await st.usage("plain"), { used: 6, capacity: 1000 });

    for (const bad of ["", "a\0b", "f".repeat(513)]) {
      await rejects(() => st.add("files", bad, bytes("x"), false), "invalid");
    }
    await st.add("files", "f".repeat(512), bytes("x"), false);
  }));

Deno.test("object storage: an add over capacity is refused and nothing is lost; scoped like databases", () =>
  withEnv(async (env) => {
    const st = env.bind(top).storage;
    await st.add("plain", "a", new Uint8Array(600), false);
    await rejects(
      () => st.add("plain", "b", new Uint8Array(500), false),
      "too-large",
      /^storage "plain" would hold 1100 bytes with this file, over its size of 1000 bytes .*600 are used$/,
    );
    assertEquals(await st.files("plain"), ["a"]);
    assertEquals((await st.get("plain", "a", 0))!.length, 600);
    assertEquals(await st.usage("plain"), { used: 600, capacity: 1000 });
    await st.add("plain", "a", new Uint8Array(1000), false); // replacing: 1000 in all, fits
    assertEquals(await st.usage("plain"), { used: 1000, capacity: 1000 });

    const shopSt = env.bind(shop).storage;
    await shopSt.add("media_x", "img", bytes("png"), false);
    await rejects(
      () => env.bind(blog).storage.open("media_x"),
      "unbound",
      /storage "media_x" matches no storage resource of project p \(app blog\)/,
    );
  }));

Deno.test("streaming storage: versions expire after ttl, and leave reads, listings and usage", () =>
  withEnv(async (env) => {
    const st = env.bind(top).storage;
    assertEquals(await st.add("stream", "s", bytes("aaaa"), false), 1);
    env.clock.t += 600;
    assertEquals(await st.add("stream", "s", bytes("bb"), true), 2, "every add is a new version");
    assertEquals(await st.usage("stream"), { used: 6, capacity: 1000 });
    env.clock.t += 500; // v1 expired, v2 has 500 ms left
    assertEquals(await st.versions("stream", "s"), [2]);
    assertEquals(await st.get("stream", "s", 1), null);
    assertEquals(text(await st.get("stream", "s", 0)), "bb");
    assertEquals(await st.usage("stream"), { used: 2, capacity: 1000 });
    env.clock.t += 500;
    assertEquals(await st.files("stream"), []);
    assertEquals(await st.current("stream", "s"), null);
    assertEquals(await st.usage("stream"), { used: 0, capacity: 1000 });
    assertEquals(await env.store.list(["hoarder", "objects"]), [], "expired versions' pins are gone");
    // expired bytes never block an add: the counter is recounted before refusing
    await st.add("stream", "t", new Uint8Array(800), false);
    env.clock.t += 1000;
    await st.add("stream", "u", new Uint8Array(800), false);
    assertEquals(await st.files("stream"), ["u"]);
  }));

Deno.test("globals: shared by the project, one application, or one function", () =>
  withEnv(async (env) => {
    const project = { application: false, function: false };
    const app = { application: true, function: false };
    const fn = { application: false, function: true };
    const g = env.bind(shop).globals;
    await g.put("n", project, bytes("p"));
    await g.put("n", app, bytes("a"));
    await g.put("n", fn, bytes("f"));
    const sibling = env.bind({ app: "shop", functionId: "f_sibling" }).globals;
    const other = env.bind(blog).globals;
    assertEquals(text(await other.get("n", project)), "p");
    assertEquals(text(await sibling.get("n", app)), "a");
    assertEquals(await other.get("n", app), null);
    assertEquals(text(await env.bind(shop).globals.get("n", fn)), "f");
    assertEquals(await sibling.get("n", fn), null);
    await rejects(() => g.put("n", project, new Uint8Array(60 * KiB + 1)), "too-large");
    await rejects(() => g.put("", project, bytes("x")), "invalid");
    assertEquals(text(await other.get("n", project)), "p");
  }));

Deno.test("content: add and cat by CID; absent and malformed CIDs", () =>
  withEnv(async (env) => {
    const c = env.bind(top).content;
    const cid = await c.add(bytes("hello content"));
    assertEquals(text(await c.cat(cid)), "hello content");
    assertEquals((await env.store.list(["hoarder", "objects", cid])).length, 1, "pinned for the hoarders");
    const absent = CID.createV1(0x55, await sha256.digest(bytes("never added"))).toString();
    await rejects(() => c.cat(absent), "not-found");
    await rejects(() => c.cat("not-a-cid"), "invalid");
  }));

Deno.test("data survives a restart: the KV and the content store reopened", async () => {
  let env = await open();
  try {
    const first = env.bind(shop);
    await first.database.put("cache", "k", bytes("kept"));
    await first.storage.add("media_1", "f", bytes("file"), false);
    await first.globals.put("g", { application: true, function: false }, bytes("global"));
    await env.close();
    env = await open(env.dir);
    const again = env.bind(shop);
    assertEquals(text(await again.database.get("cache", "k")), "kept");
    assertEquals(text(await again.storage.get("media_1", "f", 0)), "file");
    assertEquals(text(await again.globals.get("g", { application: true, function: false })), "global");
    assertEquals(await again.storage.usage("media_1"), { used: 4, capacity: 1000 });
  } finally {
    await env.close();
    await Deno.remove(env.dir, { recursive: true });
  }
});

Deno.test("bindings from a parsed project config: scope, match, size, type, versioning and ttl", () => {
  const { config, issues } = parseProjectConfig({
    "config.yaml": "id: ''\nname: hello\ndescription: demo\ntags: []\n",
    "databases/users.yaml": "match: user_.*\nuseRegex: true\nstorage: {size: 1MB}\n",
    "storages/files.yaml": "match: files\nobject: {versioning: true, size: 10MB}\n",
    "applications/shop/config.yaml": "description: the shop\n",
    "applications/shop/storages/events.yaml": "match: events\nstreaming: {ttl: 1h, size: 1KB}\n",
  });
  assertEquals(issues, []);
  const dbs = databaseBindingsOf(config!);
  assertEquals(dbs.map(({ id: _, ...b }) => b), [{
    name: "users",
    match: "user_.*",
    regex: true,
    sizeBytes: 1_000_000,
  }]);
  const sts = storageBindingsOf(config!).map(({ id: _, ...b }) => b).sort((a, b) => a.name.localeCompare(b.name));
  assertEquals(sts, [
    {
      name: "events",
      app: "shop",
      match: "events",
      regex: false,
      type: "streaming",
      versioning: false,
      ttlMs: 3_600_000,
      sizeBytes: 1000,
    },
    { name: "files", match: "files", regex: false, type: "object", versioning: true, sizeBytes: 10_000_000 },
  ]);
  assert(dbs[0].id.length > 0, "ids are carried");
});

Deno.test("openUserDataStore on a cloud: replicas on hoarder nodes (own RPC service), elsewhere through them", async () => {
  const kv = await Deno.openKv(":memory:");
  const asked: string[] = [];
  const handled: string[] = [];
  const directory = {
    peersFor: (service: string) => (asked.push(service), []),
    onChange: () => () => {},
    get: () => undefined,
  };
  const cluster = (services: string[]) =>
    ({
      config: { services },
      rpc: {},
      directory,
      p2p: {
        libp2p: { peerId: { toString: () => "me" }, handle: (p: string) => (handled.push(p), Promise.resolve()) },
      },
    }) as unknown as Parameters<typeof openUserDataStore>[0]["cluster"];

  const hoarder = await openUserDataStore({ kv, writer: "me", cluster: cluster(["hoarder", "substrate"]) });
  assertEquals(handled, ["/tau/userdata/1.0.0"]);
  assertEquals((await hoarder.store.set(["x"], new Uint8Array([1, 2]))).acks, 0);
  assertEquals(asked, ["hoarder"], "writes are pushed to the other hoarder nodes");
  assertEquals(await hoarder.store.get(["x"]), new Uint8Array([1, 2]));
  hoarder.stop();

  const gateway = await openUserDataStore({ kv, writer: "me", cluster: cluster(["substrate"]) });
  assertEquals(hoarder.db !== undefined && gateway.db === undefined, true);
  await assertRejects(() => gateway.store.get(["x"]), /^no hoarder node is reachable$/);
  kv.close();
});
