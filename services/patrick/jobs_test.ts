/**
 * patrick's queue on its own (issue 8 #10): a build step that waits until the test lets it finish stands in for
 * monkey, so the order of builds is exact. A later push supersedes a queued one of its branch; main goes first.
 * (The flood through git itself is in tests/hardening_builds_test.ts.)
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { join } from "node:path";
import { openContentStore } from "../../runtime/storage/helia.ts";
import type { PushEvent } from "../git/hosting.ts";
import { type Job, Patrick } from "./jobs.ts";
import { Kvdb } from "../kvdb/store.ts";
import { ReplicaStore } from "../kvdb/mod.ts";

Deno.test("patrick: queued builds of a branch coalesce into the newest, and main is built first", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tau-patrick-" });
  const kv = await Deno.openKv(join(dir, "kv"));
  const store = await openContentStore(join(dir, "store"));
  const built: string[] = [];
  let release: (() => void) | undefined;
  const started: PromiseWithResolvers<void>[] = [];
  const state = new ReplicaStore(await Kvdb.open({ kv, writer: "local" }));
  const patrick = new Patrick(state, store, async (job: Job) => {
    built.push(`${job.branch}@${job.commit.slice(0, 2)}`);
    started.shift()?.resolve();
    await new Promise<void>((r) => (release = r));
    return { id: `d-${job.id}`, cid: "bafy" };
  });
  const push = (branch: string, n: number, repo = "code") =>
    patrick.onPush({ project: "p", repo, branch, commit: `${n}`.padEnd(40, "0"), source: "git" } as PushEvent);
  try {
    const first = Promise.withResolvers<void>();
    started.push(first);
    const running = await push("feature_a", 10);
    await first.promise; // feature_a@10 is building; everything below waits behind it
    const queued = [
      await push("feature_a", 11),
      await push("feature_b", 20),
      await push("feature_a", 12, "config"),
      await push("main", 30),
      await push("feature_b", 21),
      await push("main", 31),
    ];
    const byCommit = async (n: number) => (await patrick.getJob(queued.find((j) => j.commit.startsWith(`${n}`))!.id));
    assertEquals((await byCommit(11)).status, "superseded");
    assertEquals((await byCommit(11)).supersededBy, (await byCommit(12)).id);
    assertEquals((await byCommit(20)).status, "superseded");
    assertEquals((await byCommit(30)).status, "superseded");
    for (let i = 0; i < 4; i++) {
      const next = Promise.withResolvers<void>();
      started.push(next);
      release!();
      if (i < 3) await next.promise;
    }
    for (const job of [running, ...queued]) await patrick.waitFor(job.id);
    // One build per branch after the running one, main first, then the others in the order they were pushed.
    assertEquals(built, ["feature_a@10", "main@31", "feature_a@12", "feature_b@21"]);
    assertEquals((await byCommit(31)).status, "success");
    assertEquals((await patrick.listJobs("p")).filter((j) => j.status === "superseded").length, 3);
  } finally {
    release?.();
    await store.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
