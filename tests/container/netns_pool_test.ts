/**
 * End to end (root): the pool of pre-made network namespaces (runtime/container/netns_pool.ts, helper/netns.c).
 * A container started from the pool gets a namespace of its own that only it uses, works as in a fresh one
 * (loopback, /sys showing its own devices, low ports), and nothing of the pool is left after removal or close().
 */
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { e2e, finalCleanup, httpGet } from "./harness.ts";
import { ContainerRuntime } from "../../runtime/container/runtime.ts";
import { cloneContainer } from "../../runtime/container/clone.ts";
import { parseStatefile } from "../../runtime/container/statefile.ts";

const HTTPD = `container: busybox:latest
port: 8080
command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
`;

/** "net:[N]" of every namespace bind-mounted under `dir` (pool entries, claimed or free). */
async function nsMountsUnder(dir: string): Promise<string[]> {
  const info = await Deno.readTextFile("/proc/self/mountinfo");
  return info.split("\n").filter((l) => l.includes(` ${dir}/`) && l.includes(" - nsfs ")).map((l) => l.split(" ")[3]);
}

/** What a container sees of its network, and whether a user other than root in it may listen on port 80. */
async function networkInside(rt: ContainerRuntime, id: string) {
  const sh = (script: string) => rt.execInContainer(id, ["sh", "-c", script], true);
  const devices = (await sh("ls /sys/class/net")).stdout.trim();
  const sysWritable = (await sh("echo x > /sys/kernel/x")).code === 0;
  // Every uid may: a pooled namespace is not the container's user namespace's, so nobody there has
  // CAP_NET_BIND_SERVICE in it; ip_unprivileged_port_start is 0 instead, in both kinds (helper/netns.c).
  const lowPort = await sh('su -s /bin/sh nobody -c "httpd -p 80 -h /www" && wget -q -O - http://127.0.0.1/index.html');
  const linkDown = (await sh("ip link set lo down")).code === 0;
  return { devices, sysWritable, lowPort: lowPort.stdout, linkDown };
}

const EXPECTED_NETWORK = { devices: "lo", sysWritable: false, lowPort: "hello from busybox\n", linkDown: false };

Deno.test(e2e("container: clones start in pre-made network namespaces, one each, used by nobody else", async (h) => {
  const { rt } = h;
  await rt.netns.fill(4);
  const made = await nsMountsUnder(rt.netns.dir);
  assertEquals(made.length, 4, "four namespaces made ahead");
  const [parent] = await rt.run(parseStatefile(HTTPD));
  const clones = await cloneContainer(rt, parent.id, 3);
  assertEquals(await rt.netns.free(), [], "the pool was used up");
  const recs = await Promise.all([parent, ...clones].map((c) => rt.getContainer(c.id)));
  const used = recs.map((r) => r.netns!);
  assertEquals(new Set(used).size, 4, "every container has a namespace of its own");
  assertEquals([...used].sort(), [...made].sort(), "and each is one the pool made");
  assertEquals(await nsMountsUnder(rt.runRoot), [], "a namespace in use is held by its container alone");
  for (const c of [parent, ...clones]) {
    assertEquals((await httpGet(c.ports[0].host, "/index.html")).status, 200, `${c.name} serves through its port`);
  }
  assertEquals(await networkInside(rt, clones[1].id), EXPECTED_NETWORK);
  // The harness removes them and checks that nothing of them is left (processes in their namespaces included).
}));

Deno.test(e2e("container: a fresh network namespace behaves like a pooled one", async ({ rt }) => {
  assertEquals(await rt.netns.free(), [], "the pool is empty: the helper makes the namespace");
  const [c] = await rt.run(parseStatefile(HTTPD));
  assertEquals(await networkInside(rt, c.id), EXPECTED_NETWORK);
}));

Deno.test(e2e("container: a claimed namespace is released whether or not a start got to use it", async ({ rt }) => {
  // Claimed, then the start ended before its supervisor joined it (tau or the helper was killed in between).
  await rt.netns.fill(1);
  const dir = await Deno.makeTempDir({ dir: rt.runRoot, prefix: ".test-" });
  assertEquals(await rt.netns.claim([dir]), 1);
  assertEquals((await nsMountsUnder(dir)).length, 1, "the claim moved the namespace into the container's dir");
  await rt.netns.releaseClaimed(dir);
  assertEquals(await nsMountsUnder(rt.runRoot), [], "released, not left mounted");
  await Deno.remove(dir);
  // Joined, then the command was not found: the supervisor released the entry, the namespace went with the container.
  await rt.netns.fill(1);
  await assertRejects(() => rt.run(parseStatefile(`container: busybox\ncommand: [no-such-cmd]\n`)), /not found/);
  assertEquals(await rt.netns.free(), [], "the start took the namespace");
  assertEquals(await nsMountsUnder(rt.runRoot), []);
  assertEquals((await rt.listContainers()).length, 0, "failed starts leave nothing");
}));

Deno.test(e2e("container: a runtime with a pool fills it, and close() releases it", async ({ rt }) => {
  const other = await ContainerRuntime.open(rt.dataDir, { netnsPool: 2 });
  await other.netns.fill();
  assertEquals((await other.netns.free()).length, 2);
  assertEquals((await nsMountsUnder(other.netns.dir)).length, 2);
  // What a killed fill leaves half made is cleared too.
  await Deno.mkdir(`${other.netns.dir}/.new-999999999-0`);
  await Deno.writeTextFile(`${other.netns.dir}/.new-999999999-0/ns`, "");
  await other.close();
  assertEquals(await other.netns.free(), []);
  assertEquals(await nsMountsUnder(rt.runRoot), [], "no namespace left mounted");
  assertEquals([...Deno.readDirSync(other.netns.dir)].map((e) => e.name), [], "nothing left in the pool dir");
}));

Deno.test(finalCleanup());
