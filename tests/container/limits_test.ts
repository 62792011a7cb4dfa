/**
 * End to end (root): limits are enforced (memory, pids, CPU), a container without limits has no cgroups of its own
 * and its usage is still reported, mounts are read-only when asked, seccomp blocks mount, clone works.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { e2e, finalCleanup } from "./harness.ts";
import { cloneContainer } from "../../runtime/container/clone.ts";
import { detectCgroupLayout } from "../../runtime/container/cgroups.ts";
import { parseStatefile } from "../../runtime/container/statefile.ts";
import { tau } from "../helpers/cloud.ts";
import { containerPids } from "../../runtime/container/usage.ts";

const sleepy = (extra = "") => parseStatefile(`container: busybox\ncommand: ["sleep", "600"]\n${extra}`);

Deno.test(e2e("container: a memory hog is OOM-killed at the memory limit", async ({ rt }) => {
  // tail keeps the current line in memory, and /dev/zero never ends a line.
  const [c] = await rt.run(
    parseStatefile(`container: busybox\ncommand: ["tail", "/dev/zero"]\nlimits: {memory: 16MB}\n`),
  );
  const rec = await rt.waitContainer(c.id, 30_000);
  assertEquals(rec.status, "exited");
  assertEquals(rec.exitCode, 137, "killed by SIGKILL");
  assertEquals(rec.oomKilled, true);
}));

Deno.test(e2e("container: a fork bomb stops at the pids limit", async ({ rt }) => {
  // Without the limit all 60 forks succeed and the script prints "all forked"; with it, fork fails and
  // busybox sh gives up with "can't fork".
  const [c] = await rt.run(parseStatefile(`container: busybox
command: ["sh", "-c", "for i in $(seq 1 60); do sleep 600 & done; echo all forked"]
limits: {pids: 16}
`));
  const rec = await rt.waitContainer(c.id, 30_000);
  assertEquals(rec.status, "exited");
  const log = (await rt.lastLogLines(c.id, 50)).join("\n");
  assert(log.includes("can't fork"), `fork was refused (log: ${log})`);
  assert(!log.includes("all forked"), "the loop must not complete");
}));

Deno.test(e2e("container: CPU is throttled at the cpus limit", async ({ rt }) => {
  const layout = await detectCgroupLayout();
  if (!layout.v1.cpu && !layout.v2?.controllers.includes("cpu")) {
    console.log("no cpu cgroup controller on this host: nothing to check");
    return;
  }
  const [c] = await rt.run(parseStatefile(`container: busybox
command: ["sh", "-c", "while :; do :; done"]
limits: {cpus: 0.05}
`));
  const rec = await rt.getContainer(c.id);
  const read = (path: string) => Deno.readTextFile(path).then((t) => t.trim(), () => null);
  let dir: string | undefined, quota: string | null = null;
  for (const d of rec.cgroups) {
    // v1: cpu.cfs_quota_us + cpu.cfs_period_us; v2: cpu.max "<quota> <period>"
    const v1 = await read(`${d}/cpu.cfs_quota_us`);
    const v2 = await read(`${d}/cpu.max`);
    if (v1 !== null) quota = `${v1} ${await read(`${d}/cpu.cfs_period_us`)}`;
    else if (v2 !== null) quota = v2;
    if (quota !== null) {
      dir = d;
      break;
    }
  }
  assert(dir, `no cpu cgroup among ${rec.cgroups.join(", ")}`);
  assertEquals(quota, "5000 100000", "0.05 CPU = 5 ms per 100 ms period");
  // The busy loop wants a whole CPU, so the scheduler must hold it back (even a busy host leaves it more than 5%):
  // wait, bounded, for the counter.
  let throttled = 0;
  for (let i = 0; i < 200 && throttled === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const stat = (await read(`${dir}/cpu.stat`)) ?? "";
    throttled = Number(stat.match(/^nr_throttled (\d+)/m)?.[1] ?? 0);
  }
  assert(throttled > 0, "the container was throttled (cpu.stat nr_throttled > 0)");
}));

Deno.test(e2e("container: mounts are read-only when asked, writable otherwise", async ({ rt, tmp }) => {
  const ro = `${tmp}/ro-src`, rw = `${tmp}/rw-src`;
  await Deno.mkdir(ro, { recursive: true });
  await Deno.mkdir(rw, { recursive: true });
  await Deno.writeTextFile(`${ro}/config.txt`, "from host\n");
  try {
    const [c] = await rt.run(sleepy(`mounts:
  - {source: ${ro}, target: /config, readonly: true}
  - {source: ${rw}, target: /data}
`));
    const read = await rt.execInContainer(c.id, ["cat", "/config/config.txt"], true);
    assertEquals(read.stdout, "from host\n");
    const write = await rt.execInContainer(c.id, ["sh", "-c", "echo x > /config/new"], true);
    assert(write.code !== 0, "write to a read-only mount must fail");
    assertEquals(await Deno.stat(`${ro}/new`).then(() => 1, () => 0), 0);
    const ok = await rt.execInContainer(c.id, ["sh", "-c", "echo y > /data/new"], true);
    assertEquals(ok.code, 0);
    assertEquals(await Deno.readTextFile(`${rw}/new`), "y\n");
  } finally {
    await Deno.remove(ro, { recursive: true });
    await Deno.remove(rw, { recursive: true });
  }
}));

Deno.test(e2e("container: seccomp blocks mount and namespace creation; capabilities are dropped", async ({ rt }) => {
  const [c] = await rt.run(sleepy());
  const mount = await rt.execInContainer(c.id, ["mount", "-t", "tmpfs", "none", "/mnt"], true);
  assert(mount.code !== 0, "mount must fail");
  const unshare = await rt.execInContainer(c.id, ["unshare", "-n", "true"], true);
  assert(unshare.code !== 0, "unshare must fail");
  const caps = await rt.execInContainer(c.id, ["grep", "CapBnd", "/proc/self/status"], true);
  const bnd = BigInt(`0x${caps.stdout.split(":")[1].trim()}`);
  assert((bnd & (1n << 21n)) === 0n, "CAP_SYS_ADMIN dropped");
  assert(mount.stderr.length > 0 && (await rt.getContainer(c.id)).status === "running");
}));

Deno.test(e2e("container: clone starts copies that see the parent's files", async ({ rt }) => {
  const [parent] = await rt.run(parseStatefile(`container: busybox
port: 8080
command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
`));
  const w = await rt.execInContainer(parent.id, ["sh", "-c", "echo state > /www/state.txt; rm /www/index.html"], true);
  assertEquals(w.code, 0);
  const clones = await cloneContainer(rt, parent.id, 2);
  assertEquals(clones.length, 2);
  for (const c of clones) {
    const r = await rt.execInContainer(c.id, ["sh", "-c", "cat /www/state.txt; ls /www"], true);
    assertEquals(r.stdout, "state\nstate.txt\n", "the clone sees written and deleted files as the parent did");
    assert(c.ports[0].host !== parent.ports[0].host, "each clone has its own host port");
  }
  // A batch idmaps the image layers once for all its containers (helper/userns.c): no container may hold one. A
  // detached mount's descriptor shows as "/" in /proc, so they are told apart by what they open: a layer's root.
  const layers = new Set<string>();
  for await (const e of Deno.readDir(rt.images.layersDir)) {
    const st = await Deno.stat(`${rt.images.layersDir}/${e.name}`);
    if (st.isDirectory) layers.add(`${st.dev}:${st.ino}`);
  }
  for (const c of clones) {
    const init = (await rt.getContainer(c.id)).initPid!;
    for await (const fd of Deno.readDir(`/proc/${init}/fd`)) {
      const st = await Deno.stat(`/proc/${init}/fd/${fd.name}`).catch(() => null);
      assert(!st || !layers.has(`${st.dev}:${st.ino}`), `the init of ${c.name} holds an image layer (fd ${fd.name})`);
    }
  }
  // Clones write to their own upper layer.
  await rt.execInContainer(clones[0].id, ["sh", "-c", "echo mine > /www/state.txt"], true);
  const p = await rt.execInContainer(parent.id, ["cat", "/www/state.txt"], true);
  assertEquals(p.stdout, "state\n");
}));

Deno.test(
  e2e("container: without limits it gets no cgroups of its own; tau container stats still counts it", async (h) => {
    const { rt } = h;
    const [c] = await rt.run(parseStatefile(`container: busybox
command: ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; head -c 8000000 /dev/zero | tail -c 1 >/dev/null; sleep 600"]
`));
    const rec = await rt.getContainer(c.id);
    assertEquals(rec.cgroups, [], "no memory, pids or cpu cgroup without a limit");
    const own = await Deno.readTextFile(`/proc/${rec.initPid}/cgroup`);
    assert(!/\/tau-[0-9a-f]{12}$/m.test(own), `the container is in no cgroup of its own: ${own}`);
    // Bounded wait for the loop and the pipe to finish: the shell then runs sleep in its place.
    const sleeping = async () => {
      const pids = await containerPids(await rt.getContainer(c.id));
      const cmds = await Promise.all(pids.map((p) => Deno.readTextFile(`/proc/${p}/cmdline`).catch(() => "")));
      return cmds.some((cmd) => cmd.startsWith("sleep\0"));
    };
    for (let i = 0; i < 1000 && !(await sleeping()); i++) await new Promise((r) => setTimeout(r, 20));
    const usage = await rt.usage(c.id);
    assertEquals(usage.processes, 2, "init and the command");
    assert(usage.cpuMs > 0, "the busy loop's CPU time is counted");
    assert(usage.pssBytes > 0 && usage.rssBytes >= usage.pssBytes, "memory of its processes");
    assertEquals(usage.memoryCgroupBytes, undefined, "no memory cgroup to read");
    const stats = await tau(["container", "stats", c.id, "--data", rt.dataDir]);
    assertEquals(stats.code, 0, stats.stderr);
    const [header, row] = stats.stdout.trim().split("\n");
    assert(header.startsWith("ID") && header.includes("CPU") && header.includes("MEMORY (PSS)"), header);
    assert(row.startsWith(c.id) && / 2 /.test(row) && row.endsWith("-"), row);
    // With a memory limit the cgroup's charge is reported too.
    const [limited] = await rt.run(sleepy("limits: {memory: 32MB}\n"));
    const withCgroup = await rt.usage(limited.id);
    assert((withCgroup.memoryCgroupBytes ?? 0) > 0, "charged to its memory cgroup");
  }),
);

Deno.test(finalCleanup());
