/**
 * Container benchmarks (root): start-to-exit of /bin/true via tau-ns-helper vs crun (same run, same timing
 * harness, ratio of medians), first HTTP 200 after `run`, and 100 clones started in parallel (time, CPU, memory),
 * with and without pre-made network namespaces, interleaved.
 * `deno run -A bench/container_bench.ts`, or call runContainerBench() from bench/main.ts.
 */
import { busyboxLayer, writeOciLayout } from "../tests/container/fixture.ts";
import { ContainerRuntime, containerSupportProblem } from "../runtime/container/runtime.ts";
import { importImage } from "../runtime/container/images/import.ts";
import { cloneContainer } from "../runtime/container/clone.ts";
import { NetnsPool } from "../runtime/container/netns_pool.ts";
import { parseStatefile } from "../runtime/container/statefile.ts";
import { detectCgroupLayout, planCgroups } from "../runtime/container/cgroups.ts";
import { USERNS_BASE, usernsAvailable } from "../runtime/container/userns.ts";
import type { ContainerRecord } from "../runtime/container/records.ts";
import { interleave, median, spread } from "./pairs.ts";

const RUNS = 30;

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

const CLONES = 100;
const CLONE_PAIRS = Number(Deno.env.get("BENCH_PAIRS") ?? 5);

/**
 * CPU time of this process and of everything it starts (the helper, supervisors, containers), in ms: a v1 cpuacct
 * cgroup of our own, which they all inherit. Steadier than wall time when other work shares the machine. Null on
 * a host without the v1 cpuacct controller.
 */
class CpuMeter {
  private constructor(readonly dir: string, readonly parent: string) {}
  static async open(): Promise<CpuMeter | null> {
    const own = (await Deno.readTextFile("/proc/self/cgroup")).match(/^\d+:(?:[^:]*,)?cpuacct(?:,[^:]*)?:(.*)$/m)?.[1];
    if (own === undefined) return null;
    const parent = `/sys/fs/cgroup/cpuacct${own === "/" ? "" : own}`;
    const dir = `${parent}/tau-bench-${Deno.pid}`;
    try {
      await Deno.mkdir(dir);
      await Deno.writeTextFile(`${dir}/cgroup.procs`, String(Deno.pid));
      return new CpuMeter(dir, parent);
    } catch {
      await Deno.remove(dir).catch(() => {});
      return null;
    }
  }
  async read(): Promise<number> {
    return Number((await Deno.readTextFile(`${this.dir}/cpuacct.usage`)).trim()) / 1e6;
  }
  /** Moves this process back; the cgroup goes once the containers started in it are gone. */
  async close(): Promise<void> {
    await Deno.writeTextFile(`${this.parent}/cgroup.procs`, String(Deno.pid)).catch(() => {});
    for (let i = 0; i < 100 && (await Deno.remove(this.dir).then(() => false, () => true)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

interface CloneRound {
  ms: number;
  cpuMs: number | null;
}

/**
 * 100 clones of a running busybox httpd in parallel, interleaved: without a pool (every clone makes its network
 * namespace, as a CLI clone with no node running does) and with a pool of 100 made beforehand (netns_pool.ts).
 */
async function hundredClones(rt: ContainerRuntime): Promise<void> {
  const [parent] = await rt.run(
    parseStatefile(`container: busybox\nport: 8080\ncommand: ["httpd", "-f", "-p", "8080"]\n`),
  );
  const meter = await CpuMeter.open();
  let memory = "";
  const round = async (pooled: boolean, last: boolean): Promise<CloneRound> => {
    // The pool runs only in the pooled rounds: a fresh round must find none.
    const pool = pooled ? new NetnsPool(rt.runRoot, rt.helper, CLONES) : null;
    pool?.start();
    await pool?.ready();
    await new Promise((r) => setTimeout(r, 200)); // let the fill's and the last removal's kernel work settle
    const mem0 = await memUsedMiB();
    const cpu0 = await meter?.read();
    const t0 = performance.now();
    const clones = await cloneContainer(rt, parent.id, CLONES);
    const ms = performance.now() - t0;
    const cpuMs = meter ? (await meter.read()) - cpu0! : null;
    await pool?.close();
    if (pooled && last) memory = await cloneMemory(rt, clones.map((c) => c.id), mem0);
    await Promise.all(clones.map((c) => rt.removeContainer(c.id, true)));
    return { ms, cpuMs };
  };
  let n = 0;
  const { baseline, subject } = await interleave(
    CLONE_PAIRS,
    () => round(false, false),
    () => round(true, ++n === CLONE_PAIRS + 1),
    1,
  );
  await rt.removeContainer(parent.id, true);
  await meter?.close();
  const cpu = (rs: CloneRound[]) =>
    meter ? `, CPU ${spread(rs.map((r) => r.cpuMs!))} ms (tau, helper and containers)` : "";
  console.log(`${CLONES} clones in parallel, ${CLONE_PAIRS} interleaved pairs, medians:`);
  console.log(`  fresh network namespaces: ${spread(baseline.map((r) => r.ms))} ms${cpu(baseline)}`);
  console.log(
    `  pre-made network namespaces (a pool of ${CLONES}): ${spread(subject.map((r) => r.ms))} ms${cpu(subject)}` +
      "  (goal < 150 ms)",
  );
  console.log(`  ${memory}`);
}

/** What 100 running clones hold: their processes' PSS, and the system-wide drop (kernel objects included). */
async function cloneMemory(rt: ContainerRuntime, ids: string[], mem0: number): Promise<string> {
  const mem1 = await memUsedMiB();
  const recs = await Promise.all(ids.map((id) => rt.getContainer(id)));
  let procPss = 0;
  const pids = await containerProcesses(recs);
  for (const pid of pids) procPss += await pss(pid);
  const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
  const cgroups = recs.some((r) => r.cgroups.length) ? "" : " (no memory cgroups: the clones have no memory limit)";
  return `memory: ${mib(procPss)} MiB PSS of their ${pids.length} processes (goal < 50 MB); system-wide ` +
    `MemAvailable drop ${(mem1 - mem0).toFixed(0)} MiB (includes kernel objects and anything else running on ` +
    `the host)${cgroups}`;
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
    await rt?.close();
    if (rt) await Deno.remove(rt.runRoot, { recursive: true }).catch(() => {});
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runContainerBench();
