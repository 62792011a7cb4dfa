/**
 * Domain validation on a cloud generated with `--dv`: a custom domain is served only once the TXT record `tau project`
 * prints is published; a generated name needs the project id's suffix instead. The "public DNS" is a server of this
 * test's own on loopback (seer's listener with a TXT table), which the node asks through `domains.dv-resolver`.
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { commitAndPush, hostRequest, tau, waitForBuild } from "./helpers/cloud.ts";
import { startTestCloud } from "./helpers/cluster.ts";
import { startDnsServer } from "../services/seer/server.ts";
import type { Question } from "@dnsquery/dns-packet";

const CUSTOM = "shop.customer.test";

Deno.test({
  name: "domain validation: a custom domain serves only after its TXT record is published",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const txt = new Map<string, string>();
    const dns = await startDnsServer({
      hostname: "127.0.0.1",
      port: 0,
      answer: (q: Question) => {
        const value = q.type === "TXT" ? txt.get(q.name.toLowerCase()) : undefined;
        return {
          rcode: value ? "NOERROR" : "NXDOMAIN",
          authoritative: true,
          answers: value ? [{ name: q.name, type: "TXT", ttl: 1, data: value }] : [],
          authorities: [],
          additionals: [],
        } as never;
      },
    });
    const cloud = await startTestCloud([{ shape: "all", ip: "127.0.0.21" }], {
      cloud: "dv.test",
      dv: { resolver: `127.0.0.1:${dns.port}` },
    });
    const node = cloud.nodes[0];
    const work = await Deno.makeTempDir({ prefix: "tau-dv-work-" });
    const project = join(work, "shop");
    const get = (host: string) => hostRequest(node.ports.http, host, "/", {}, node.spec.ip);
    try {
      await t.step("a custom domain without its record fails the build with the record to publish", async () => {
        assertEquals((await tau(["new", "project", "shop", "--cloud", node.url], { cwd: work })).code, 0);
        for (
          const args of [
            ["new", "domain", "custom", "--fqdn", CUSTOM],
            ["new", "website", "site", "--domains", "custom", "--paths", "/"],
          ]
        ) {
          const r = await tau(args, { cwd: project });
          assertEquals(r.code, 0, r.stderr);
        }
        await commitAndPush(join(project, "code"), "site");
        const commit = await commitAndPush(join(project, "config"), "custom domain");
        const job = await waitForBuild(node.url, "shop", commit);
        assertEquals(job.status, "failed");
        assertStringIncludes(job.error, `domain ${CUSTOM} is not validated for project shop`);
        assertEquals((await get(CUSTOM)).status, 404, "nothing is served for it");
      });

      let record = { name: "", value: "" };
      await t.step("tau project prints the TXT record", async () => {
        const r = await tau(["project", "--cloud", node.url], { cwd: project });
        assertEquals(r.code, 0, r.stderr);
        const line = r.stdout.split("\n").find((l) => l.includes(`_tau-dv.${CUSTOM}`));
        assert(line, r.stdout);
        const m = line.trim().match(/^(\S+) TXT "(.+)"$/);
        assert(m, line);
        record = { name: m[1], value: m[2] };
      });

      await t.step("a forged record is not enough; the printed one is", async () => {
        txt.set(record.name, "tau-dv=" + record.value.slice(7).split(".").slice(0, 2).join(".") + ".AAAA");
        const forged = await commitAndPush(join(project, "config"), "retry forged", true);
        assertEquals((await waitForBuild(node.url, "shop", forged)).status, "failed");
        txt.set(record.name, record.value);
        const commit = await commitAndPush(join(project, "config"), "retry", true);
        const job = await waitForBuild(node.url, "shop", commit);
        assertEquals(job.status, "success", JSON.stringify(job));
        assertEquals((await get(CUSTOM)).status, 200);
      });

      await t.step("a generated name needs the project id's suffix, not a record", async () => {
        const id = (await (await fetch(`${node.url}/api/projects/shop`)).json()).id as string;
        const suffix = id.replace(/-/g, "").slice(-8);
        const good = `shop-${suffix}.g.dv.test`;
        let r = await tau(["new", "domain", "gen", "--fqdn", "shop.g.dv.test"], { cwd: project });
        assertEquals(r.code, 0, r.stderr);
        r = await tau(["new", "website", "gensite", "--domains", "gen", "--paths", "/"], { cwd: project });
        assertEquals(r.code, 0, r.stderr);
        await commitAndPush(join(project, "code"), "generated site");
        const bad = await commitAndPush(join(project, "config"), "generated without suffix");
        const badJob = await waitForBuild(node.url, "shop", bad);
        assertEquals(badJob.status, "failed");
        assertStringIncludes(badJob.error, `does not contain ${suffix}`);
        const file = join(project, "config", "domains", "gen.yaml");
        await Deno.writeTextFile(file, (await Deno.readTextFile(file)).replace("shop.g.dv.test", good));
        const ok = await commitAndPush(join(project, "config"), "generated with suffix");
        assertEquals((await waitForBuild(node.url, "shop", ok)).status, "success");
        assertEquals((await get(good)).status, 200);
        assertEquals((await get(CUSTOM)).status, 200, "the validated domain still serves");
      });
    } finally {
      await cloud.stop();
      await dns.close();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
