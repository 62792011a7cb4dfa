/**
 * Hoarder's failures on a real cloud: a publish that cannot get its copies (the other node frozen with SIGSTOP)
 * fails its build with one clear line and changes nothing that is live; a bad `hoarder:` setting stops `tau serve`.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { commitAndPush, tau, waitForBuild } from "./helpers/cloud.ts";
import { HOST, newProject, startHoardCluster, waitUntil } from "./helpers/hoard_cluster.ts";
import { generateShapeConfig } from "../services/config/generate.ts";

Deno.test("hoarder: a publish that cannot get its 2 copies fails clearly; what was live stays live", async () => {
  const cloud = await startHoardCluster({
    ips: ["127.0.0.51", "127.0.0.52"],
    hoarder: { grace: "60s", "publish-timeout": "3s" },
  });
  const [x, y] = cloud.nodes;
  const work = join(cloud.dir, "work");
  await Deno.mkdir(work);
  try {
    const p = await newProject(x, work, "frozen");
    await Deno.writeTextFile(join(p.code, "websites/site/index.html"), "<h1>v1</h1>");
    await commitAndPush(p.code, "code v1");
    const v1 = await waitForBuild(x.url, "frozen", await commitAndPush(p.config, "config v1"));
    assertEquals(v1.status, "success", v1.error);

    // The other node stops answering (SIGSTOP): it stays in the cloud (inside its grace period) but takes nothing.
    y.signal("SIGSTOP");
    await Deno.writeTextFile(join(p.code, "websites/site/index.html"), "<h1>v2</h1>");
    const v2 = await waitForBuild(x.url, "frozen", await commitAndPush(p.code, "v2"));
    assertEquals(v2.status, "failed");
    assertStringIncludes(v2.error, "hoarder: function hi, website site: only 1 of the 2 copies a deployment needs");
    const log = await tau(["logs", v2.id, "--cloud", x.url]);
    assertStringIncludes(log.stdout, "hint: tau nodes lists the hoarder nodes");
    assertStringIncludes(log.stdout, "still live");
    assertEquals((await x.get(HOST, "/")).text, "<h1>v1</h1>");
    const deployments = await x.api<{ current: string; history: { id: string }[] }>(
      "/api/projects/frozen/deployments",
    );
    assertEquals(deployments.current, (v1.deployment as unknown as { id: string }).id);
    assert(!deployments.history.some((d) => d.id > deployments.current), "the failed publish recorded a deployment");

    y.signal("SIGCONT");
    // Back: x hears its heartbeat again (a publish also looks again at who is alive while it waits, but its 3 s here
    // are tight on a loaded machine).
    await waitUntil("x sees y alive again", 20_000, async () => {
      const nodes = await x.api<{ peer: string; alive: boolean }[]>("/api/nodes");
      return nodes.some((n) => n.peer === y.peer && n.alive);
    });
    await Deno.writeTextFile(join(p.code, "websites/site/index.html"), "<h1>v3</h1>");
    const v3 = await waitForBuild(x.url, "frozen", await commitAndPush(p.code, "v3"));
    assertEquals(v3.status, "success", v3.error);
    await waitUntil("the other node serves v3", 15_000, async () => (await y.get(HOST, "/")).text === "<h1>v3</h1>");
  } finally {
    await cloud.stop();
  }
});

Deno.test("hoarder: a bad hoarder setting stops tau serve with one clear error", async () => {
  const root = await Deno.makeTempDir({ prefix: "tau-hoard-bad-" });
  try {
    const { file } = await generateShapeConfig({ root, cloud: "bad.test", shape: "node", ip: "127.0.0.51" });
    await Deno.writeTextFile(file, "hoarder:\n  copies: 0\n", { append: true });
    const r = await tau(["serve", "--root", root, "--shape", "node"]);
    assertEquals(r.code, 1, r.stdout);
    const line = (await Deno.readTextFile(file)).split("\n").indexOf("  copies: 0") + 1;
    assertEquals(r.stderr.trim(), `error: ${file}:${line}: hoarder.copies 0 must be a whole number >= 1`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
