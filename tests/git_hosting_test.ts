/**
 * The cloud's git hosting speaks smart HTTP to clients other than the git CLI: isomorphic-git clones, commits and
 * pushes, and that push triggers a build like any other. Unknown repositories answer 404 with a hint.
 */
import git from "isomorphic-git";
import http from "isomorphic-git/http/web";
import fs from "node:fs";
import { join } from "node:path";
import { assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { startCloud, waitForBuild } from "./helpers/cloud.ts";

Deno.test("git hosting works with isomorphic-git: clone, commit, push triggers a build", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-isogit-" });
  const cloud = await startCloud(join(work, "data"));
  try {
    const created = await fetch(`${cloud.url}/api/projects`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "iso_git" }),
    });
    assertEquals(created.status, 201);
    const project = await created.json();
    const dir = join(work, "config");
    await git.clone({ fs, http, dir, url: project.git.config, singleBranch: true });
    const yaml = await Deno.readTextFile(join(dir, "config.yaml"));
    assertStringIncludes(yaml, "name: iso_git");

    await Deno.writeTextFile(
      join(dir, "config.yaml"),
      yaml.replace('description: ""', "description: via isomorphic-git"),
    );
    await git.add({ fs, dir, filepath: "config.yaml" });
    const commit = await git.commit({ fs, dir, message: "edit", author: { name: "iso", email: "iso@localhost" } });
    const pushed = await git.push({ fs, http, dir, remote: "origin", ref: "main" });
    assertEquals(pushed.ok, true);
    const job = await waitForBuild(cloud.url, "iso_git", commit);
    assertEquals(job.status, "success", job.error);
    assertEquals(job.repo, "config");

    // A fresh fetch sees the pushed commit.
    const again = join(work, "again");
    await git.clone({ fs, http, dir: again, url: project.git.config, singleBranch: true });
    assertEquals(await git.resolveRef({ fs, dir: again, ref: "HEAD" }), commit);

    const missing = await fetch(`${cloud.url}/git/iso_git/nope.git/info/refs?service=git-upload-pack`);
    assertEquals(missing.status, 404);
    assertStringIncludes(await missing.text(), "not found");
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
