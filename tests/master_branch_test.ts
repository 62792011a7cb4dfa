// A project whose repos have master and no main (as repos moved from Taubyte or an older host often do): master is
// served as main; once main exists, master is a branch like any other.
import { join } from "node:path";
import { assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { hostRequest, sh, siteProject, startCloud, tau, waitForBuild } from "./helpers/cloud.ts";

Deno.test("a config repo with master and no main is served from master", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-master-" });
  const cloud = await startCloud(join(work, "data"));
  try {
    const dir = await siteProject(cloud, work, "legacy", "legacy.localtau", "from main");
    // What an imported repo looks like: master, and HEAD on it (git refuses to delete the branch HEAD names).
    for (const repo of ["code", "config"]) {
      const path = join(dir, repo);
      await sh("git", ["push", "-q", "origin", "HEAD:refs/heads/master"], path);
      await sh(
        "git",
        ["symbolic-ref", "HEAD", "refs/heads/master"],
        join(cloud.dataDir, "git", "legacy", `${repo}.git`),
      );
      await sh("git", ["push", "-q", "origin", "--delete", "main"], path);
    }
    const code = join(dir, "code");
    await Deno.writeTextFile(join(code, "websites/home/index.html"), "from master");
    await sh("git", ["commit", "-qam", "master only"], code);
    await sh("git", ["push", "-q", "origin", "HEAD:master"], code);
    const commit = (await sh("git", ["rev-parse", "HEAD"], code)).stdout.trim();
    const job = await waitForBuild(cloud.url, "legacy", commit);
    assertEquals(job.status, "success", job.error);
    assertEquals((await hostRequest(cloud.port, "legacy.localtau", "/")).text, "from master");
    const log = await tau(["logs", job.id, "--cloud", cloud.url]);
    assertStringIncludes(log.stdout, "branch master is served as main (the config repo has no main branch)");
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
