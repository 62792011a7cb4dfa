import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { Kvdb } from "../kvdb/store.ts";
import { ReplicaStore } from "../kvdb/mod.ts";
import type { DeploymentRecord, DeploymentRef } from "../tns/records.ts";
import { keptIds, objectPinKey, pinSetOf, pinsKey, wantedCids } from "./pins.ts";

Deno.test("keptIds: the newest `keep` of the history, and the current one wherever the pointer is", () => {
  const history = ["d5", "d4", "d3", "d2", "d1"];
  assertEquals(keptIds(history, "d5", 2).sort(), ["d4", "d5"]);
  // rolled back past the window: the current deployment is still kept
  assertEquals(keptIds(history, "d1", 2).sort(), ["d1", "d4", "d5"]);
  assertEquals(keptIds(history, "d3", 0), ["d3"]);
  assertEquals(keptIds([], null, 3), []);
});

function record(project: string, fn: string, site: string): DeploymentRecord {
  return {
    project,
    branch: "main",
    commit: "c0ffee",
    configCommit: "c0ffee",
    jobId: "j",
    createdAt: "",
    functions: [{ name: "f", id: "f", cid: fn, call: "f", timeoutMs: 1, memoryBytes: 1, routes: [] }],
    websites: [{ name: "s", id: "s", root: site, spa: false, routes: [] }],
  };
}

async function store() {
  return new ReplicaStore(await Kvdb.open({ kv: await Deno.openKv(":memory:"), writer: "t" }));
}

/** A deployment ref in TNS (its record CID is rec-<id>, or rec-<project>-<id> outside project p). */
async function deploy(state: ReplicaStore, project: string, id: string) {
  const ref = { id, cid: project === "p" ? `rec-${id}` : `rec-${project}-${id}`, commit: "c0ffee" } as DeploymentRef;
  await state.set(["tns", "deploy", project, "main", id], ref);
  return ref;
}

Deno.test("wantedCids: kept deployments' pins, shared CIDs listed once with every deployment needing them", async () => {
  const state = await store();
  const recs = new Map<string, DeploymentRecord>();
  for (const [i, site] of ["site1", "site2", "site3"].entries()) {
    const id = `d${i + 1}`;
    const rec = record("p", "mod", site);
    const ref = await deploy(state, "p", id);
    await state.set(pinsKey("p", "main", id), pinSetOf(ref, rec));
    recs.set(ref.cid, rec);
  }
  await state.set(["tns", "current", "p", "main"], { id: "d1" }); // rolled back to the oldest
  const { wanted, complete } = await wantedCids(state, 1, (cid) => Promise.resolve(recs.get(cid)!));
  assert(complete);
  assertEquals([...wanted.keys()].sort(), ["mod", "rec-d1", "rec-d3", "site1", "site3"]);
  assertEquals(wanted.get("mod")!.deployments.sort(), ["d1", "d3"]);
  assertEquals(wanted.get("site1")!.what, "website s");
});

Deno.test("wantedCids: without a pin set the record says what is needed; an unreadable one makes it incomplete", async () => {
  const state = await store();
  await deploy(state, "p", "d1");
  await deploy(state, "q", "d1");
  await state.set(["tns", "current", "p", "main"], { id: "d1" });
  await state.set(["tns", "current", "q", "main"], { id: "d1" });
  const { wanted, complete, problems } = await wantedCids(state, 5, (cid) => {
    if (cid === "rec-d1") return Promise.resolve(record("p", "m", "s"));
    return Promise.reject(new Error("not reachable"));
  });
  // p's record read; q's failed: its record CID is still wanted, and nothing may be released on this picture
  assertEquals([...wanted.keys()].sort(), ["m", "rec-d1", "rec-q-d1", "s"]);
  assertEquals(complete, false);
  assertEquals(problems.length, 1);
});

Deno.test("wantedCids: functions' stored objects are wanted while any reference to them lives, from their own store", async () => {
  const state = await store();
  const userData = await store();
  await deploy(state, "p", "d1");
  await state.set(["tns", "current", "p", "main"], { id: "d1" });
  await state.set(
    pinsKey("p", "main", "d1"),
    pinSetOf({ id: "d1", cid: "rec-d1" } as DeploymentRef, record("p", "m", "s")),
  );
  await userData.set(objectPinKey("obj", "storage", "p", "", "files", "a.txt", "1"), {
    what: "storage files a.txt v1",
    project: "p",
  });
  await userData.set(objectPinKey("obj", "storage", "p", "", "files", "b.txt", "1"), {
    what: "storage files b.txt v1",
    project: "p",
  });
  // content a deployment already wants keeps its deployment view
  await userData.set(objectPinKey("m", "content", "p", "f"), { what: "content", project: "p" });
  const read = () => Promise.reject(new Error("not needed"));
  let { wanted } = await wantedCids(state, 1, read, userData);
  assertEquals([...wanted.keys()].sort(), ["m", "obj", "rec-d1", "s"]);
  assertEquals(wanted.get("obj")!.branch, "");
  assertEquals(wanted.get("m")!.deployments, ["d1"]);
  // not read from the control state unless it is the only store
  assertEquals([...(await wantedCids(state, 1, read)).wanted.keys()].sort(), ["m", "rec-d1", "s"]);
  await userData.delete(objectPinKey("obj", "storage", "p", "", "files", "a.txt", "1"));
  assert((await wantedCids(state, 1, read, userData)).wanted.has("obj"), "b.txt still refers to it");
  await userData.delete(objectPinKey("obj", "storage", "p", "", "files", "b.txt", "1"));
  ({ wanted } = await wantedCids(state, 1, read, userData));
  assert(!wanted.has("obj"), "the last reference gone, it is released");
});
