/**
 * End to end (root): the pool of pre-made network namespaces (runtime/container/netns_pool.ts, helper/netns.c).
 * A container started from the pool gets a namespace of its own that nothing else holds, works as in a fresh one
 * (loopback, /sys showing its own devices, low ports), and the pool leaves nothing behind when it ends, however.
 */
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { e2e, finalCleanup, httpGet } from "./harness.ts";
import { ContainerRuntime } from "../../runtime/container/runtime.ts";
import { cloneContainer } from "../../runtime/container/clone.ts";
import { NetnsPool } from "../../runtime/container/netns_pool.ts";
import { parseStatefile } from "../../runtime/container/statefile.ts";

const HTTPD = `container: busybox:latest
port: 8080
command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
`;

/** The pool process (a `tau-ns-helper netns-pool` on this socket), if one runs. */
async function poolProcess(socket: string): Promise<number | null> {
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const argv = (await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "")).split("\0");
    if (argv[1] === "netns-pool" && argv[2] === socket) return Number(e.name);
  }
  return null;
}

/** "net:[N]" of the namespaces process `pid` holds open. */
async function heldNamespaces(pid: number): Promise<string[]> {
  const out: string[] = [];
  for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
    const target = await Deno.readLink(`/proc/${pid}/fd/${fd.name}`).catch(() => "");
    if (target.startsWith("net:")) out.push(target);
  }
  return out;
}

/** The namespaces the pool process holds ready (it also holds the one it runs in, to come back to). */
async function pooled(holder: number): Promise<string[]> {
  const home = await Deno.readLink(`/proc/${holder}/ns/net`);
  return (await heldNamespaces(holder)).filter((ns) => ns !== home);
}

/** What a container sees of its network, and whether a user other than root in it may listen on port 80. */
async function networkInside(rt: ContainerRuntime, id: string) {
  const sh = (script: string) => rt.execInContainer(id, ["sh", "-c", script], true);
  const devices = (await sh("ls /sys/class/net")).stdout.trim();
  const sysWritable = (await sh("echo x > /sys/kernel/x")).code === 0;
  // Every uid may: a pre-made namespace is not the container's user namespace's, so nobody there has
  // CAP_NET_BIND_SERVICE in it; ip_unprivileged_port_start is 0 instead, in both kinds (helper/netns.c).
  const lowPort = await sh('su -s /bin/sh nobody -c "httpd -p 80 -h /www" && wget -q -O - http://127.0.0.1/index.html');
  const linkDown = (await sh("ip link set lo down")).code === 0;
  return { devices, sysWritable, lowPort: lowPort.stdout, linkDown };
}

const EXPECTED_NETWORK = { devices: "lo", sysWritable: false, lowPort: "hello from busybox\n", linkDown: false };

Deno.test(e2e("container: clones start in pre-made network namespaces, one each, held by nobody else", async (h) => {
  const pool = new NetnsPool(h.rt.runRoot, h.rt.helper, 4);
  pool.start();
  try {
    await pool.ready();
    const holder = (await poolProcess(pool.socket))!;
    const made = await pooled(holder);
    assertEquals(made.length, 4, "four namespaces made ahead");
    const [parent] = await h.rt.run(parseStatefile(HTTPD));
    assert(made.includes((await h.rt.getContainer(parent.id)).netns!), "the start got one the pool made");
    // The pool refills whenever starts pause, and hands out the oldest first: the clones get three of these.
    const before = await pooled(holder);
    const clones = await cloneContainer(h.rt, parent.id, 3);
    const recs = await Promise.all([parent, ...clones].map((c) => h.rt.getContainer(c.id)));
    const used = recs.map((r) => r.netns!);
    assertEquals(new Set(used).size, 4, "every container has a namespace of its own");
    for (const ns of used.slice(1)) assert(before.includes(ns), `each clone was given a pre-made one (${ns})`);
    const stillHeld = await pooled(holder);
    assert(!stillHeld.some((ns) => used.includes(ns)), "the pool lets go of what it hands out");
    for (const c of [parent, ...clones]) {
      assertEquals((await httpGet(c.ports[0].host, "/index.html")).status, 200, `${c.name} serves through its port`);
    }
    assertEquals(await networkInside(h.rt, clones[1].id), EXPECTED_NETWORK);
    // The harness removes them and checks that nothing of them is left (processes in their namespaces included).
  } finally {
    await pool.close();
  }
}));

Deno.test(e2e("container: a fresh network namespace behaves like a pre-made one", async ({ rt }) => {
  assertEquals(await rt.netns.running(), false, "no pool: the helper makes the namespace");
  const [c] = await rt.run(parseStatefile(HTTPD));
  assertEquals(await networkInside(rt, c.id), EXPECTED_NETWORK);
}));

/** Pids of the processes inside namespace `ns` or holding it open, except `but`. */
async function usersOf(ns: string, but: number): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (!/^\d+$/.test(e.name) || pid === but) continue;
    const inside = (await Deno.readLink(`/proc/${pid}/ns/net`).catch(() => "")) === ns;
    if (inside || (await heldNamespaces(pid).catch((): string[] => [])).includes(ns)) out.push(pid);
  }
  return out;
}

Deno.test(e2e("container: a failed start takes its namespace along; starts past the pool make their own", async (h) => {
  const pool = new NetnsPool(h.rt.runRoot, h.rt.helper, 1);
  pool.start();
  try {
    await pool.ready();
    const holder = (await poolProcess(pool.socket))!;
    const [ns] = await pooled(holder);
    // The pooled namespace goes to a start that then fails: nothing keeps it.
    await assertRejects(() => h.rt.run(parseStatefile(`container: busybox\ncommand: [no-such-cmd]\n`)), /not found/);
    assertEquals(await usersOf(ns, holder), [], "nothing holds the failed start's namespace");
    // Three at once from a pool of one (refilled only once starts pause): all start, each in its own namespace.
    const [parent] = await h.rt.run(parseStatefile(HTTPD));
    const clones = await cloneContainer(h.rt, parent.id, 3);
    const recs = await Promise.all(clones.map((c) => h.rt.getContainer(c.id)));
    assertEquals(new Set(recs.map((r) => r.netns)).size, 3);
    for (const c of clones) assertEquals((await httpGet(c.ports[0].host, "/index.html")).status, 200);
  } finally {
    await pool.close();
  }
}));

Deno.test(
  e2e(
    "container: the pool ends with close(), or with the process that runs it, and takes its namespaces",
    async ({ rt }) => {
      // close(): a runtime opened with a pool runs one, and its close() ends it.
      const other = await ContainerRuntime.open(rt.dataDir, { netnsPool: 2 });
      await other.netns.ready();
      const pid = (await poolProcess(other.netns.socket))!;
      assertEquals((await pooled(pid)).length, 2);
      await other.close();
      assertEquals(await poolProcess(other.netns.socket), null, "the pool process is gone");
      assertEquals(await rt.netns.running(), false, "and so is its socket");
      // kill -9 of the tau that runs it: the pool sees its stdin close and ends too.
      const script = `import { NetnsPool } from "${new URL("../../runtime/container/netns_pool.ts", import.meta.url)}";
const pool = new NetnsPool(${JSON.stringify(rt.runRoot)}, ${JSON.stringify(rt.helper)}, 2);
pool.start();
await pool.ready();
console.log("ready");
setInterval(() => {}, 1000);`;
      const child = new Deno.Command(Deno.execPath(), { args: ["eval", script], stdout: "piped" }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      assertEquals((await reader.read()).value?.trim(), "ready");
      const orphan = (await poolProcess(rt.netns.socket))!;
      child.kill("SIGKILL");
      await child.status;
      reader.releaseLock();
      for (let i = 0; i < 200 && (await poolProcess(rt.netns.socket)) !== null; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assertEquals(await poolProcess(rt.netns.socket), null, `pool process ${orphan} ended with its tau`);
      assertEquals(await rt.netns.running(), false, "its socket is gone");
    },
  ),
);

Deno.test(finalCleanup());
