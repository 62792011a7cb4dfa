/**
 * Container benchmarks (root): start-to-exit of /bin/true via tau-ns-helper vs crun (same run, same timing
 * harness, ratio of medians), first HTTP 200 after `run`, and 100 clones started in parallel (time, memory).
 * `deno run -A bench/container_bench.ts`, or call runContainerBench() from bench/main.ts.
 */
import { busyboxLayer, writeOciLayout } from "../tests/container/fixture.ts";
import { ContainerRuntime, containerSupportProblem } from "../runtime/container/runtime.ts";
import { importImage } from "../runtime/container/images/import.ts";
import { cloneContainer } from "../runtime/container/clone.ts";
import { parseStatefile } from "../runtime/container/statefile.ts";
import { detectCgroupLayout, planCgroups } from "../runtime/container/cgroups.ts";
import { USERNS_BASE, usernsAvailable } from "../runtime/container/userns.ts";
import type { ContainerRecord } from "../runtime/container/records.ts";

const RUNS = 30;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function have(cmd: string): Promise<boolean> {
  return await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" }).output().then((o) =>
    o.success
  );
}

async function memUsedMiB(): Promise<number> {
  const info = await Deno.readTextFile("/proc/meminfo");
  const get = (k: string) => Number(info.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"))![1]);
  return (get("MemTotal") - get("MemAvailable")) / 1024;
}

/**
 * Both runtimes are timed by the same bash loop inside one `unshare -m` (crun 1.8 refuses hybrid cgroups unless
 * a tmpfs hides the v2 mount). bash reads the clock from $EPOCHREALTIME, so nothing but the runtime itself runs
 * between the two readings. Each tau run gets fresh overlay dirs (as every container does), made outside the timing.
 */
async function trueStartToExit(rt: ContainerRuntime, tmp: string, layerDir: string): Promise<void> {
  // Per-run overlay dirs go where tau puts every container's (<data>/run: a tmpfs when there is one).
  const work = `${rt.runRoot}/bench-true`;
  await Deno.mkdir(`${tmp}/bundle`, { recursive: true });
  // The same cgroups, device cgroup and user namespace as launch.ts gives every container.
  const layout = await detectCgroupLayout();
  const plan = planCgroups("bench-$i", {}, layout);
  const cgroupArgs = [...plan.dirs.map((d) => `--cgroup ${d}`), `--device-cgroup ${plan.devices}`];
  if (usernsAvailable()) cgroupArgs.push(`--userns ${USERNS_BASE} 0`);
  const helperCmd = [
    rt.helper,
    "run --lower",
    layerDir,
    `--upper ${work}/$i/upper --work ${work}/$i/work --rootfs ${work}/$i/rootfs --log ${tmp}/true.log`,
    ...cgroupArgs,
    "--env PATH=/bin -- /bin/true",
  ].join(" ");
  let crunCmd = "";
  if (await have("crun")) {
    await new Deno.Command("crun", { args: ["spec"], cwd: `${tmp}/bundle` }).output();
    const spec = JSON.parse(await Deno.readTextFile(`${tmp}/bundle/config.json`));
    spec.root = { path: layerDir, readonly: true };
    spec.process.args = ["/bin/true"];
    spec.process.terminal = false;
    await Deno.writeTextFile(`${tmp}/bundle/config.json`, JSON.stringify(spec));
    crunCmd = `crun run -b ${tmp}/bundle tau-bench-$i`;
  }
  const script = `
mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null
t() { local a=$EPOCHREALTIME; "$@" >/dev/null; local b=$EPOCHREALTIME; echo "$1 $(( \${b/./} - \${a/./} ))"; }
for i in $(seq 1 ${RUNS}); do
  mkdir -p ${work}/$i
  t ${helperCmd}
  ${crunCmd ? `t ${crunCmd}` : ""}
  rm -rf ${work}/$i
done`;
  const out = await new Deno.Command("unshare", {
    args: ["-m", "--propagation", "private", "bash", "-c", script],
    stdout: "piped",
  }).output();
  const times: Record<string, number[]> = { tau: [], crun: [] };
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const [who, us] = line.split(" ");
    const key = who === rt.helper ? "tau" : who === "crun" ? "crun" : "";
    if (key) times[key].push(Number(us) / 1e3);
  }
  const tau = median(times.tau);
  console.log(`start-to-exit /bin/true, median of ${times.tau.length}: tau-ns-helper ${tau.toFixed(2)} ms`);
  if (times.crun.length) {
    const crun = median(times.crun);
    console.log(`  crun ${crun.toFixed(2)} ms (same run); ratio tau/crun = ${(tau / crun).toFixed(2)} (goal <= 0.5)`);
  } else {
    console.log("  crun not installed (apt-get install crun): no baseline");
  }
}

async function firstHttp200(rt: ContainerRuntime): Promise<void> {
  const spec = parseStatefile(`container: busybox\nport: 8080\ncommand: ["httpd", "-f", "-p", "8080", "-h", "/www"]\n`);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const [c] = await rt.run(spec);
    for (let attempt = 0; attempt < 500; attempt++) {
      const ok = await fetch(`http://127.0.0.1:${c.ports[0].host}/`, { headers: { connection: "close" } })
        .then(async (r) => (await r.body?.cancel(), r.status === 200), () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    times.push(performance.now() - t0);
    await rt.removeContainer(c.id, true);
  }
  console.log(
    `first HTTP 200 after run (busybox httpd, through the published port), median of 5: ${median(times).toFixed(1)} ms`,
  );
}

/** Proportional set size (shared pages split among their users) of a process, in bytes; 0 when it is gone. */
async function pss(pid: number): Promise<number> {
  const text = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`).catch(() => "");
  const kb = text.match(/^Pss:\s+(\d+) kB/m);
  return kb ? Number(kb[1]) * 1024 : 0;
}

/** Every process the containers brought: supervisors, their host-side forwarders, and all inside the netns. */
async function containerProcesses(recs: ContainerRecord[]): Promise<number[]> {
  const supervisors = new Set(recs.map((r) => r.supervisorPid));
  const netns = new Set(recs.map((r) => r.netns));
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const ns = await Deno.readLink(`/proc/${pid}/ns/net`).catch(() => "");
    if (supervisors.has(pid) || supervisors.has(ppid) || netns.has(ns)) out.push(pid);
  }
  return out;
}

async function cgroupMemory(recs: ContainerRecord[]): Promise<number> {
  let total = 0;
  for (const dir of recs.flatMap((r) => r.cgroups)) {
    for (const f of ["memory.usage_in_bytes", "memory.current"]) {
      const v = await Deno.readTextFile(`${dir}/${f}`).catch(() => "");
      if (v) total += Number(v.trim());
    }
  }
  return total;
}

async function hundredClones(rt: ContainerRuntime): Promise<void> {
  const [parent] = await rt.run(
    parseStatefile(`container: busybox\nport: 8080\ncommand: ["httpd", "-f", "-p", "8080"]\n`),
  );
  const mem0 = await memUsedMiB();
  const t0 = performance.now();
  const clones = await cloneContainer(rt, parent.id, 100);
  const ms = performance.now() - t0;
  const mem1 = await memUsedMiB();
  const recs = await Promise.all(clones.map((c) => rt.getContainer(c.id)));
  let procPss = 0;
  const pids = await containerProcesses(recs);
  for (const pid of pids) procPss += await pss(pid);
  const cg = await cgroupMemory(recs);
  const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
  console.log(`100 clones in parallel: ${ms.toFixed(0)} ms total (goal < 150 ms)`);
  console.log(
    `  memory: ${mib(procPss)} MiB PSS of their ${pids.length} processes, ${mib(cg)} MiB charged to their memory ` +
      `cgroups (goal < 50 MB); system-wide MemAvailable drop ${(mem1 - mem0).toFixed(0)} MiB (includes kernel ` +
      `objects and anything else running on the host)`,
  );
  await Promise.all(clones.map((c) => rt.removeContainer(c.id, true)));
  await rt.removeContainer(parent.id, true);
}

export async function runContainerBench(): Promise<void> {
  const problem = await containerSupportProblem();
  if (problem) {
    console.log(`container bench skipped: ${problem}`);
    return;
  }
  const tmp = await Deno.makeTempDir({ prefix: "tau-cbench-" });
  let rt: ContainerRuntime | undefined;
  try {
    rt = await ContainerRuntime.open(`${tmp}/data`);
    await writeOciLayout(`${tmp}/oci`, { layers: [await busyboxLayer()] }, "busybox:latest");
    const [img] = await importImage(rt.images, `${tmp}/oci`, rt.helper);
    await trueStartToExit(rt, tmp, rt.images.layerPath(img.layers[0]));
    await firstHttp200(rt);
    await hundredClones(rt);
  } finally {
    if (rt) await Deno.remove(rt.runRoot, { recursive: true }).catch(() => {});
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runContainerBench();
