/**
 * Config repos built to hurt (issue 8 #7 and the alias-bomb finding), pushed with git: a file or a repo over the
 * size caps, an alias bomb, and a config that is slow to parse. Each build fails with a line naming the file, what
 * was live stays live, and another project's site keeps answering while the parser works (it runs on a worker).
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { commitAndPush, hostRequest, sh, siteProject, startCloud, tau, waitForBuild } from "./helpers/cloud.ts";

/** A YAML flow list of about `bytes` bytes: slow to parse (~4 ms per KiB here), and not a valid function. */
function slowYaml(bytes: number): string {
  const parts = ["source: .\nnumbers: ["];
  let size = parts[0].length;
  for (let i = 0; size < bytes - 16; i++) {
    const item = `${i}, `;
    parts.push(item);
    size += item.length;
  }
  return parts.join("") + "0]\n";
}

const ALIAS_BOMB = ["a: &a [x, x, x, x, x, x, x, x, x]"]
  .concat(["b", "c", "d", "e", "f", "g"].map((k, i) => `${k}: &${k} [${Array(9).fill(`*${"abcdef"[i]}`).join(", ")}]`))
  .join("\n") + "\n";

Deno.test("hardening: oversized, explosive and slow config fails clearly; the node keeps serving", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "tau-harden-config-" });
  const cloud = await startCloud(join(work, "data"));
  try {
    await siteProject(cloud, work, "bystander", "bystander.localtau", "still here");
    const dir = await siteProject(cloud, work, "victim", "victim.localtau", "v1");
    const config = join(dir, "config");
    await Deno.mkdir(join(config, "functions"), { recursive: true });
    const live = async () => assertEquals((await hostRequest(cloud.port, "victim.localtau", "/")).text, "v1");
    const failedBuild = async (message: string) => {
      const job = await waitForBuild(cloud.url, "victim", await commitAndPush(config, message));
      assertEquals(job.status, "failed");
      await live();
      return job.error;
    };

    await t.step("a 300 KB functions/bomb.yaml: the error names the file and the cap", async () => {
      await Deno.writeTextFile(join(config, "functions/bomb.yaml"), `source: .\n# ${"x".repeat(300 * 1024)}\n`);
      assertEquals(
        await failedBuild("big file"),
        "functions/bomb.yaml: 307.2 KB is too large for a config file (at most 256KB): keep data in the code repo",
      );
      const v = await tau(["validate"], { cwd: dir });
      assertEquals(v.code, 1);
      assertStringIncludes(v.stderr, "functions/bomb.yaml: 307.2 KB is too large for a config file");
    });

    await t.step("an alias bomb: the error names the file", async () => {
      await Deno.writeTextFile(join(config, "functions/bomb.yaml"), ALIAS_BOMB);
      assertStringIncludes(await failedBuild("alias bomb"), "functions/bomb.yaml: too many alias references");
    });

    await t.step("more YAML than a config repo may hold (2 MB)", async () => {
      await Deno.remove(join(config, "functions/bomb.yaml"));
      for (let i = 0; i < 9; i++) {
        await Deno.writeTextFile(join(config, `functions/filler_${i}.yaml`), `# ${"x".repeat(240 * 1024)}\n`);
      }
      assertStringIncludes(await failedBuild("too much"), "config repo: 2.2 MB of YAML in ");
      for (let i = 0; i < 9; i++) await Deno.remove(join(config, `functions/filler_${i}.yaml`));
    });

    await t.step("2 MB of slow YAML is parsed off the serving thread: the other site answers meanwhile", async () => {
      for (let i = 0; i < 8; i++) {
        await Deno.writeTextFile(join(config, `functions/slow_${i}.yaml`), slowYaml(240 * 1000));
      }
      let running = true;
      let slowest = 0;
      const watch = (async () => {
        while (running) {
          const t0 = performance.now();
          assertEquals((await hostRequest(cloud.port, "bystander.localtau", "/")).text, "still here");
          slowest = Math.max(slowest, performance.now() - t0);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const error = await failedBuild("slow");
      running = false;
      await watch;
      assertStringIncludes(error, "functions/slow_0.yaml");
      // Parsed inline, these 2 MB held every request for ~10 s on this machine.
      assert(slowest < 3000, `the other site waited ${Math.round(slowest)} ms while the config was parsed`);
    });

    await t.step("removing the bad files builds again", async () => {
      for (let i = 0; i < 8; i++) await Deno.remove(join(config, `functions/slow_${i}.yaml`));
      const clean = await waitForBuild(cloud.url, "victim", await commitAndPush(config, "clean"));
      assertEquals(clean.status, "success", clean.error);
      await Deno.writeTextFile(join(dir, "code/websites/home/index.html"), "v2");
      const job = await waitForBuild(cloud.url, "victim", await commitAndPush(join(dir, "code"), "v2"));
      assertEquals(job.status, "success", job.error);
      assertEquals((await hostRequest(cloud.port, "victim.localtau", "/")).text, "v2");
      assertEquals((await sh("git", ["status", "--porcelain"], config)).stdout, "");
    });
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
