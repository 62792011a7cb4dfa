/**
 * Builds under pressure (issue 8 #10, #11), through git and the HTTP API: a flood of branch pushes does not delay a
 * fix on main, and a node killed (-9) between a push's ref update and its job records builds that push at the next
 * start. (patrick's queue order on its own: services/patrick/jobs_test.ts.)
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { commitAndPush, hostRequest, sh, siteProject, startCloud, waitForBuild } from "./helpers/cloud.ts";

type Job = Record<string, string>;

Deno.test("hardening: a fix on main goes live before a flood of branch builds", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-harden-flood-" });
  const cloud = await startCloud(join(work, "data"));
  try {
    const dir = await siteProject(cloud, work, "flooded", "flooded.localtau", "v1");
    // 30 branches in one push (under the cap of 32), each a real build: both repos have the branch.
    for (const repo of ["config", "code"]) {
      const at = join(dir, repo);
      for (let i = 0; i < 30; i++) await sh("git", ["branch", `topic_${i}`], at);
      const out = await new Deno.Command("git", { args: ["push", "-q", "origin", "--all"], cwd: at, stderr: "piped" })
        .output();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    }
    await Deno.writeTextFile(join(dir, "code/websites/home/index.html"), "v2 fix");
    const fix = await commitAndPush(join(dir, "code"), "fix");
    const job = await waitForBuild(cloud.url, "flooded", fix);
    assertEquals(job.status, "success", job.error);
    assertEquals((await hostRequest(cloud.port, "flooded.localtau", "/")).text, "v2 fix");

    const jobs: Job[] = await (await fetch(`${cloud.url}/api/builds?project=flooded&limit=200`)).json();
    const topics = jobs.filter((j) => j.branch.startsWith("topic_"));
    assertEquals(topics.length, 60, "one job per branch and repo");
    // The fix did not wait for the flood: branch builds were still waiting when it was live.
    const laterTopics = topics.filter((j) => !j.startedAt || j.startedAt > job.finishedAt);
    assert(laterTopics.length >= 10, `only ${laterTopics.length} branch builds were left when main was live`);
    // Both repos' pushes of one branch are one build at the branch's heads: the older one is superseded.
    const superseded = topics.filter((j) => j.status === "superseded");
    assert(superseded.length > 0, "no queued branch build was superseded");
    for (const j of superseded) {
      assertEquals(jobs.find((k) => k.id === j.supersededBy)?.branch, j.branch);
    }
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});

Deno.test("hardening: a node killed -9 between a push's ref update and its job builds that push at restart", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-harden-crash-" });
  const data = join(work, "data");
  let cloud = await startCloud(data);
  try {
    const dir = await siteProject(cloud, work, "crashy", "crashy.localtau", "v1");
    await cloud.stop();

    // TAU_TEST_HOLD_AFTER_REF_UPDATE (test-only) parks the node right after receive-pack moved the ref.
    cloud = await startCloud(data, { env: { TAU_TEST_HOLD_AFTER_REF_UPDATE: "1" } });
    const code = join(dir, "code");
    await sh("git", ["remote", "set-url", "origin", `${cloud.url}/git/crashy/code.git`], code);
    await Deno.writeTextFile(join(code, "websites/home/index.html"), "v2");
    await sh("git", ["add", "-A"], code);
    await sh("git", ["commit", "-q", "-m", "v2"], code);
    const commit = (await sh("git", ["rev-parse", "HEAD"], code)).stdout.trim();
    const pushing = new Deno.Command("git", { args: ["push", "origin", "HEAD:main"], cwd: code, stderr: "piped" })
      .output();
    for (let i = 0; i < 600 && !cloud.output().includes("test hold: crashy/code refs moved"); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assertStringIncludes(cloud.output(), "test hold: crashy/code refs moved, jobs not recorded");
    Deno.kill(cloud.pid, "SIGKILL");
    await cloud.exited;
    assert(!(await pushing).success, "the client saw the node die");

    cloud = await startCloud(data);
    const job = await waitForBuild(cloud.url, "crashy", commit);
    assertEquals(job.status, "success", job.error);
    assertEquals(job.source, "recovery");
    assertEquals((await hostRequest(cloud.port, "crashy.localtau", "/")).text, "v2");

    // The ref had moved, so git has nothing left to send; the build happened anyway.
    await sh("git", ["remote", "set-url", "origin", `${cloud.url}/git/crashy/code.git`], code);
    const again = await new Deno.Command("git", { args: ["push", "origin", "HEAD:main"], cwd: code, stderr: "piped" })
      .output();
    assertStringIncludes(new TextDecoder().decode(again.stderr), "Everything up-to-date");

    // A second restart finds nothing left to recover.
    await cloud.stop();
    cloud = await startCloud(data);
    const jobs: Job[] = await (await fetch(`${cloud.url}/api/builds?project=crashy`)).json();
    assertEquals(jobs.filter((j) => j.source === "recovery").length, 1);
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
