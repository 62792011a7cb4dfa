/**
 * A partition and its heal: four `tau serve` processes on 127.0.0.61-.64 (every service), split in two halves by
 * iptables DROP rules between their addresses (the nodes dial from their own IP, so the rules can name them).
 * Each half keeps building and serving; two projects claim one FQDN, one on each side; once the halves meet again
 * every node holds the same state, the earlier claim owns the FQDN everywhere, and the other build is marked failed.
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { commitAndPush, hostRequest, sh, tau, waitForBuild } from "./helpers/cloud.ts";
import { eventually, nodesSeenBy, startTestCloud, type TestNode } from "./helpers/cluster.ts";

const IPS = ["127.0.0.61", "127.0.0.62", "127.0.0.63", "127.0.0.64"];
const SHARED = "contested.part.test";
const CHAIN = `TAU-PART-${Deno.pid}`;

async function iptables(...args: string[]) {
  const out = await new Deno.Command("iptables", { args: ["-w", ...args], stderr: "piped" }).output();
  if (!out.success) throw new Error(`iptables ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

const haveIptables = await new Deno.Command("sh", { args: ["-c", "command -v iptables"], stdout: "null" }).output()
  .then((o) => o.success && Deno.uid() === 0).catch(() => false);

async function split(a: string[], b: string[]) {
  await iptables("-N", CHAIN);
  for (const x of a) {
    for (const y of b) {
      await iptables("-A", CHAIN, "-s", x, "-d", y, "-j", "DROP");
      await iptables("-A", CHAIN, "-s", y, "-d", x, "-j", "DROP");
    }
  }
  await iptables("-I", "INPUT", "-j", CHAIN);
  await iptables("-I", "OUTPUT", "-j", CHAIN);
}

async function heal() {
  await new Deno.Command("iptables", { args: ["-w", "-D", "INPUT", "-j", CHAIN], stderr: "null" }).output();
  await new Deno.Command("iptables", { args: ["-w", "-D", "OUTPUT", "-j", CHAIN], stderr: "null" }).output();
  await new Deno.Command("iptables", { args: ["-w", "-F", CHAIN], stderr: "null" }).output();
  await new Deno.Command("iptables", { args: ["-w", "-X", CHAIN], stderr: "null" }).output();
}

const get = (node: TestNode, host: string, path = "/") => hostRequest(node.ports.http, host, path, {}, node.spec.ip);

async function newSite(work: string, node: TestNode, project: string, fqdn: string, text: string) {
  const r = await tau(["new", "project", project, "--cloud", node.url], { cwd: work });
  assertEquals(r.code, 0, r.stderr);
  const dir = join(work, project);
  for (
    const args of [["new", "domain", "d", "--fqdn", fqdn], ["new", "website", "site", "--domains", "d", "--paths", "/"]]
  ) {
    const s = await tau(args, { cwd: dir });
    assertEquals(s.code, 0, s.stderr);
  }
  await Deno.writeTextFile(join(dir, "code", "websites", "site", "index.html"), text);
  await commitAndPush(join(dir, "code"), "site");
  const commit = await commitAndPush(join(dir, "config"), "domain");
  return { dir, commit };
}

Deno.test({
  name: "a partition and its heal: both halves keep working; one owner per FQDN after; state converges",
  ignore: !haveIptables,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const cloud = await startTestCloud(IPS.map((ip, i) => ({ shape: `n${i + 1}`, ip })), { cloud: "part.test" });
    const [a1, a2, b1, b2] = cloud.nodes;
    const work = await Deno.makeTempDir({ prefix: "tau-part-" });
    try {
      await cloud.waitMesh();
      await t.step("apart: each half sees the other as down", async () => {
        await split([a1.spec.ip, a2.spec.ip], [b1.spec.ip, b2.spec.ip]);
        await eventually(
          async () => {
            const seen = await nodesSeenBy(a1);
            return seen.filter((e) => e.alive).length === 2;
          },
          "half A sees only itself",
          20_000,
        );
        await eventually(
          async () => {
            const seen = await nodesSeenBy(b1);
            return seen.filter((e) => e.alive).length === 2;
          },
          "half B sees only itself",
          20_000,
        );
      });

      let losing = "";
      await t.step("each half builds a project claiming the same FQDN; each serves its own", async () => {
        const first = await newSite(work, a1, "alpha", SHARED, "alpha's site");
        const alphaJob = await waitForBuild(a1.url, "alpha", first.commit);
        assertEquals(
          alphaJob.status,
          "success",
          JSON.stringify(await (await fetch(`${a1.url}/api/builds?project=alpha`)).json()),
        );
        await new Promise((r) => setTimeout(r, 50)); // the other claim is the later one, by any clock
        const second = await newSite(work, b1, "beta", SHARED, "beta's site");
        const job = await waitForBuild(b1.url, "beta", second.commit);
        assertEquals(job.status, "success", "half B cannot know of alpha's claim");
        losing = job.id;
        assertStringIncludes((await get(a2, SHARED)).text, "alpha's site");
        assertStringIncludes((await get(b2, SHARED)).text, "beta's site");
      });

      await t.step(
        "healed: every node converges, the earlier claim owns the FQDN everywhere, the other build failed",
        async () => {
          await heal();
          await cloud.waitMesh(40_000);
          for (const node of cloud.nodes) {
            await eventually(
              async () => (await get(node, SHARED)).text.includes("alpha's site"),
              `alpha on ${node.spec.ip}`,
              30_000,
            );
          }
          const job = await eventually(
            async () => {
              const j = await (await fetch(`${b2.url}/api/builds/${losing}`)).json();
              return j.status === "failed" ? j : undefined;
            },
            "beta's build marked failed",
            30_000,
          );
          assertStringIncludes(job.error, `domain ${SHARED} is served by project alpha, which claimed it first`);
          // Every node lists both projects and the same deployments.
          const views = await Promise.all(cloud.nodes.map(async (n) => {
            const projects = (await (await fetch(`${n.url}/api/projects`)).json() as { name: string }[]).map((p) =>
              p.name
            )
              .sort();
            const beta = await (await fetch(`${n.url}/api/projects/beta/deployments`)).json();
            return JSON.stringify([projects, beta.current]);
          }));
          assert(views.every((v) => v === views[0]), views.join("\n"));
          // beta's repos, created on the other side, are on half A's auth nodes too.
          await eventually(
            async () => {
              const r = await sh("git", ["ls-remote", `${a1.url}/git/beta/config.git`]).catch(() => null);
              return r?.stdout.includes("refs/heads/main");
            },
            "beta's config repo on node a1",
            30_000,
          );
        },
      );
    } finally {
      await heal();
      await cloud.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
