// Host services behind Taubyte's ABI: a guest that opens databases, reads globals or calls out runs on an executor,
// suspended (JSPI) while the serving thread answers each operation. The services here are in-memory stand-ins (this
// is the runtime's unit test; tests/taubyte_abi_test.ts drives the real stores through a deployed project).
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { TAUBYTE_DATA_GUEST } from "../../tests/fixtures/taubyte_data_guest.ts";
import { HostError, type HostServices } from "./host/services.ts";
import { Harness, LIMITS } from "./test_support.ts";

function memoryServices(opts: { slowPut?: Promise<void> } = {}) {
  const data = new Map<string, Uint8Array>();
  const calls: string[] = [];
  const known = (db: string) => {
    if (db !== "users") throw new HostError("unbound", `database "${db}" matches no database resource`);
  };
  const host: HostServices = {
    database: {
      open: (db) => Promise.resolve(known(db)),
      get: (db, key) => (known(db), Promise.resolve(data.get(key) ?? null)),
      async put(db, key, value) {
        known(db);
        calls.push(`put ${key}`);
        if (opts.slowPut) await opts.slowPut;
        data.set(key, value);
      },
      delete: (db, key) => (known(db), data.delete(key), Promise.resolve()),
      list: (db, prefix) => (known(db), Promise.resolve([...data.keys()].filter((k) => k.startsWith(prefix)).sort())),
    },
  };
  return { host, data, calls };
}

const q = (s: string) => `http://fn.test/?${s}`;

Deno.test("taubyte/sdk databases: put, get, list, delete across calls; a missing key and an unbound name are errnos", async () => {
  const { host, calls } = memoryServices();
  const h = new Harness();
  try {
    const target = { ...await h.addWasm("data", TAUBYTE_DATA_GUEST, LIMITS, "data"), host };
    const put = await h.invoke(target, new Request(q("op=p&db=users&key=ada"), { method: "POST", body: "lovelace" }));
    assertEquals(put.status, 200, await put.text());
    await h.invoke(target, new Request(q("op=p&db=users&key=alan"), { method: "POST", body: "turing" }));
    const got = await h.invoke(target, q("op=g&db=users&key=ada"));
    assertEquals([got.status, await got.text()], [200, "lovelace"]);
    const listed = await h.invoke(target, q("op=l&db=users&key=a"));
    assertEquals(await listed.text(), "ada\0alan\0");
    await h.invoke(target, q("op=d&db=users&key=ada"));
    const gone = await h.invoke(target, q("op=g&db=users&key=ada"));
    assertEquals(gone.status, 429, "errno 29: key not found");
    const unbound = await h.invoke(target, q("op=g&db=nope&key=ada"), {}, "req-unbound");
    assertEquals(unbound.status, 422, "errno 22: database create failed");
    assert(h.logsOf("req-unbound").some((l) => l.text.includes(`database "nope" matches no database resource`)));
    // A value pointer past the guest's memory is an errno (3), not a trap of the host; nothing was written.
    const bad = await h.invoke(target, q("op=x&db=users&key=bad"));
    assertEquals(bad.status, 403);
    assertEquals((await h.invoke(target, q("op=g&db=users&key=bad"))).status, 429);
    assertEquals(await (await h.invoke(target, q("op=g&db=users&key=alan"))).text(), "turing");
    // Each put ran once, although every one was first reached by an inline attempt (stopped before it).
    assertEquals(calls, ["put ada", "put alan"]);
  } finally {
    await h.runtime.close();
  }
});

Deno.test("a guest suspended in a host call still ends at its timeout, and its write is never run twice", async () => {
  let release!: () => void;
  const slowPut = new Promise<void>((r) => (release = r));
  const { host, calls } = memoryServices({ slowPut });
  const h = new Harness();
  try {
    const target = { ...await h.addWasm("data", TAUBYTE_DATA_GUEST, { ...LIMITS, timeoutMs: 200 }, "data"), host };
    const res = await h.invoke(target, new Request(q("op=p&db=users&key=k"), { method: "POST", body: "v" }));
    assertEquals(res.status, 504, await res.text());
    release();
    await new Promise((r) => setTimeout(r, 50));
    assertEquals(calls, ["put k"], "the put ran once");
    // The executor is free again and the function still works.
    const again = await h.invoke(target, q("op=s"));
    assertEquals(again.status, 200);
  } finally {
    release();
    await h.runtime.close();
  }
});

Deno.test("self and crypto calls: the project's name, fresh random bytes", async () => {
  const h = new Harness();
  try {
    const t = await h.addWasm("data", TAUBYTE_DATA_GUEST, LIMITS, "data");
    const target = { ...t, self: { project: "shop", application: "", id: "fn-1", branch: "main", commit: "abc" } };
    assertEquals(await (await h.invoke(target, q("op=s"))).text(), "shop");
    const a = new Uint8Array(await (await h.invoke(target, q("op=r"))).arrayBuffer());
    const b = new Uint8Array(await (await h.invoke(target, q("op=r"))).arrayBuffer());
    assertEquals(a.length, 16);
    assert(a.some((x, i) => x !== b[i]), "two reads differ");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("two calls waiting in host calls at once, on one module: each gets its own answer", async () => {
  const gates = new Map<string, () => void>();
  const host: HostServices = {
    database: {
      open: () => Promise.resolve(),
      async get(_db, key) {
        if (key === "slow") await new Promise<void>((r) => gates.set(key, r));
        return new TextEncoder().encode(`value of ${key}`);
      },
      put: () => Promise.resolve(),
      delete: () => Promise.resolve(),
      list: () => Promise.resolve([]),
    },
  };
  const h = new Harness();
  try {
    const target = { ...await h.addWasm("data", TAUBYTE_DATA_GUEST, LIMITS, "data"), host };
    await h.invoke(target, q("op=g&db=d&key=warm")); // the warm instance exists
    const slow = h.invoke(target, q("op=g&db=d&key=slow"));
    const fast = await h.invoke(target, q("op=g&db=d&key=fast"));
    assertEquals(await fast.text(), "value of fast", "answered while the other call waits");
    for (let i = 0; i < 50 && !gates.has("slow"); i++) await new Promise((r) => setTimeout(r, 10));
    gates.get("slow")!();
    assertEquals(await (await slow).text(), "value of slow");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("tau's AssemblyScript SDK: Database, Globals and projectName over the same host services", async () => {
  const { host } = memoryServices();
  const globals = new Map<string, Uint8Array>();
  host.globals = {
    get: (name) => Promise.resolve(globals.get(name) ?? null),
    put: (name, _scope, value) => (globals.set(name, value), Promise.resolve()),
  };
  const h = new Harness();
  try {
    const t = await h.addAssemblyScript(
      "visit",
      `import { Database, Globals, Request, Response, projectName } from "tau-sdk";
      export function visit(): void {
        const db = Database.open("users");
        const seen = db.getString("visits");
        const n = seen == null ? 1 : I32.parseInt(seen) + 1;
        db.putString("visits", n.toString());
        Globals.put("last", Uint8Array.wrap(String.UTF8.encode(new Request().path)));
        const keys = db.list("v");
        new Response().status(200).send(projectName() + " " + n.toString() + " " + keys.join(","));
      }`,
      LIMITS,
    );
    const target = { ...t, host, self: { project: "shop", application: "", id: "f", branch: "main", commit: "c" } };
    assertEquals(await (await h.invoke(target, "/a")).text(), "shop 1 visits");
    assertEquals(await (await h.invoke(target, "/b")).text(), "shop 2 visits");
    assertEquals(new TextDecoder().decode(globals.get("last")), "/b");
  } finally {
    await h.runtime.close();
  }
});
