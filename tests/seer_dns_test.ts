/**
 * Seer in a real 3-node cloud: separate `tau serve` processes on 127.0.0.11 (all services), .12 (all) and .13
 * (gateway and seer only), configs from `tau config generate`. A project with a domain is pushed to one node; then
 * every seer is asked over UDP and TCP (our client and `dig`): the project's FQDN and gateway.tau.<cloud> list the
 * gateways, an unknown name in the zone is NXDOMAIN with the SOA, an outside name is REFUSED. One gateway node is
 * killed with SIGKILL and leaves every seer's answers within the 15 s the issue allows; restarted, it comes back.
 * And a node whose DNS port is taken does not start half-way: one error line, one hint.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import dgram from "node:dgram";
import { join } from "node:path";
import { commitAndPush, tau, waitForBuild } from "./helpers/cloud.ts";
import { freePort, startTestCloud, type TestNode } from "./helpers/cluster.ts";
import { type Asked, dig, hasDig, tcpQuery, udpQuery } from "./helpers/dns.ts";

const CLOUD = "seer.test";
const FQDN = `shop.g.${CLOUD}`;
const IPS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];

/** Ask every seer until `check` holds for all of them (bounded); returns how long it took. */
async function until(
  seers: TestNode[],
  name: string,
  check: (a: Asked) => boolean,
  timeoutMs: number,
): Promise<{ ms: number; last: Asked[] }> {
  const started = Date.now();
  let last: Asked[] = [];
  while (true) {
    last = await Promise.all(seers.map((n) => udpQuery(n.spec.ip, n.ports.dns, name).catch((e) => e as Asked)));
    if (last.every((a) => a && a.addresses && check(a))) return { ms: Date.now() - started, last };
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `${name}: not true on every seer within ${timeoutMs} ms: ${JSON.stringify(last.map((a) => a.addresses))}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test("seer: every node's DNS answers for the cloud; a killed gateway leaves the answers within 15 s", async (t) => {
  const cloud = await startTestCloud([
    { shape: "core", ip: IPS[0] },
    { shape: "core", ip: IPS[1] },
    { shape: "edge", ip: IPS[2], services: "gateway,seer" },
  ], { cloud: CLOUD });
  const [a, b, c] = cloud.nodes;
  const work = await Deno.makeTempDir({ prefix: "tau-seer-" });
  try {
    await cloud.waitMesh();

    await t.step("a project with a domain, pushed to one node, is served by every seer", async () => {
      const created = await tau(["new", "project", "shop", "--cloud", a.url], { cwd: work });
      assertEquals(created.code, 0, created.stderr);
      const project = join(work, "shop");
      for (
        const args of [
          ["new", "domain", "shop", "--fqdn", FQDN],
          ["new", "website", "site", "--domains", "shop", "--paths", "/"],
        ]
      ) {
        const r = await tau(args, { cwd: project });
        assertEquals(r.code, 0, r.stderr);
      }
      const code = await commitAndPush(join(project, "code"), "site");
      const config = await commitAndPush(join(project, "config"), "domain");
      for (const job of await Promise.all([waitForBuild(a.url, "shop", code), waitForBuild(a.url, "shop", config)])) {
        assertEquals(job.status, "success", job.error);
      }
      // TNS changes reach a seer at once or within the 5 s version check; 30 s leaves room for a busy machine.
      const { ms } = await until(cloud.nodes, FQDN, (r) => r.addresses.join() === IPS.join(), 30_000);
      console.log(`  ${FQDN} answered by all 3 seers ${ms} ms after the build finished`);
    }).catch((err) => {
      throw new Error(`${err}\n${cloud.logs()}`);
    });

    await t.step("UDP and TCP, our client and dig, on every seer", async () => {
      const withDig = await hasDig();
      if (!withDig) console.log("  dig not installed (apt-get install dnsutils): checked with our client only");
      for (const n of cloud.nodes) {
        const at = `${n.spec.shape} ${n.spec.ip}`;
        for (const ask of [udpQuery, tcpQuery]) {
          const site = await ask(n.spec.ip, n.ports.dns, FQDN);
          assertEquals([site.rcode, site.aa, site.addresses], ["NOERROR", true, IPS], at);
          assertEquals(site.packet.answers![0].ttl, 5);
          assertEquals((await ask(n.spec.ip, n.ports.dns, `gateway.tau.${CLOUD}`)).addresses, IPS, at);
          assertEquals((await ask(n.spec.ip, n.ports.dns, `seer.tau.${CLOUD}`)).addresses, IPS, at);
          assertEquals((await ask(n.spec.ip, n.ports.dns, `tns.tau.${CLOUD}`)).addresses, IPS.slice(0, 2), at);
          const nx = await ask(n.spec.ip, n.ports.dns, `nope.g.${CLOUD}`);
          assertEquals([nx.rcode, nx.packet.authorities?.[0].type, nx.packet.authorities?.[0].name], [
            "NXDOMAIN",
            "SOA",
            `g.${CLOUD}`,
          ], at);
          assertEquals((await ask(n.spec.ip, n.ports.dns, "example.com")).rcode, "REFUSED", at);
        }
        if (!withDig) continue;
        for (const tcp of [false, true]) {
          const site = await dig(n.spec.ip, n.ports.dns, FQDN, "A", { tcp });
          assertEquals([site.rcode, site.aa, site.addresses], ["NOERROR", true, IPS], site.text);
          assertEquals((await dig(n.spec.ip, n.ports.dns, `gateway.tau.${CLOUD}`, "A", { tcp })).addresses, IPS);
          const nx = await dig(n.spec.ip, n.ports.dns, `nope.g.${CLOUD}`, "A", { tcp });
          assertEquals(nx.rcode, "NXDOMAIN", nx.text);
          assert(nx.authority.some((l) => l.includes("SOA")), nx.text);
          assertEquals((await dig(n.spec.ip, n.ports.dns, "example.com", "A", { tcp })).rcode, "REFUSED");
        }
      }
    });

    await t.step("kill -9 a gateway node: every other seer drops it within 15 s", async () => {
      const killedAt = Date.now();
      await b.kill();
      const survivors = [a, c];
      const left = [IPS[0], IPS[2]].join();
      await until(survivors, FQDN, (r) => r.addresses.join() === left, 15_000);
      await until(survivors, `gateway.tau.${CLOUD}`, (r) => r.addresses.join() === left, 15_000);
      const ms = Date.now() - killedAt;
      console.log(`  killed node left every answer after ${ms} ms (bound: 15000; liveness 6000 + TTL 5000)`);
      assert(ms < 15_000, `took ${ms} ms`);
    });

    await t.step("restarted, it is back in the answers", async () => {
      await b.start();
      await until(cloud.nodes, FQDN, (r) => r.addresses.join() === IPS.join(), 30_000);
    });
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});

Deno.test("seer: a node whose DNS port is taken exits with one clear error", async () => {
  const root = await Deno.makeTempDir({ prefix: "tau-seer-busy-" });
  const ip = "127.0.0.14";
  const dns = await freePort(ip, true);
  const gen = await tau([
    ...["config", "generate", "--root", root, "--cloud", CLOUD, "--shape", "edge", "--ip", ip],
    ...["--services", "gateway,seer", "--http", `${await freePort(ip)}`, "--p2p", `${await freePort(ip)}`],
    ...["--dns", `${dns}`],
  ]);
  assertEquals(gen.code, 0, gen.stderr);
  const holder = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => holder.bind(dns, ip, resolve));
  try {
    const r = await tau(["serve", "--root", root, "--shape", "edge"]);
    assertEquals(r.code, 1, r.stdout + r.stderr);
    assertEquals(r.stderr.trim().split("\n"), [
      `error: seer cannot listen for DNS (UDP) on ${ip}:${dns}: the address is in use`,
      "  hint: stop what holds that port, or pick another with tau config generate --dns PORT",
    ]);
  } finally {
    await new Promise<void>((resolve) => holder.close(() => resolve()));
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});
