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
 * Both runtimes are timed by the same shell loop inside one `unshare -m` (crun 1.8 refuses hybrid cgroups unless
 * a tmpfs hides the v2 mount), so the fixed costs of the harness are the same on both sides.
 */
async function trueStartToExit(rt: ContainerRuntime, tmp: string, layerDir: string): Promise<void> {
  const work = `${tmp}/true`;
  for (const d of ["upper", "work", "rootfs", "bundle"]) await Deno.mkdir(`${work}/${d}`, { recursive: true });
  const helperCmd = [
    rt.helper,
    "run",
    "--lower",
    layerDir,
    "--upper",
    `${work}/upper`,
    "--work",
    `${work}/work`,
    "--rootfs",
    `${work}/rootfs`,
    "--log",
    `${work}/log`,
    "--cgroup",
    "/sys/fs/cgroup/pids/tau-bench-true",
    "--env",
    "PATH=/bin",
    "--",
    "/bin/true",
  ].join(" ");
  let crunCmd = "";
  if (await have("crun")) {
    await new Deno.Command("crun", { args: ["spec"], cwd: `${work}/bundle` }).output();
    const spec = JSON.parse(await Deno.readTextFile(`${work}/bundle/config.json`));
    spec.root = { path: layerDir, readonly: true };
    spec.process.args = ["/bin/true"];
    spec.process.terminal = false;
    await Deno.writeTextFile(`${work}/bundle/config.json`, JSON.stringify(spec));
    crunCmd = `crun run -b ${work}/bundle tau-bench-$i >/dev/null`;
  }
  const script = `
mount -t tmpfs none /sys/fs/cgroup/unified 2>/dev/null
for i in $(seq 1 ${RUNS}); do
  a=$(date +%s%N); ${helperCmd} >/dev/null; b=$(date +%s%N); echo "tau $((b - a))"
  ${crunCmd ? `a=$(date +%s%N); ${crunCmd}; b=$(date +%s%N); echo "crun $((b - a))"` : ""}
done`;
  const out = await new Deno.Command("unshare", {
    args: ["-m", "--propagation", "private", "sh", "-c", script],
    stdout: "piped",
  })
    .output();
  const times: Record<string, number[]> = { tau: [], crun: [] };
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const [who, ns] = line.split(" ");
    if (who in times) times[who].push(Number(ns) / 1e6);
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

async function hundredClones(rt: ContainerRuntime): Promise<void> {
  const [parent] = await rt.run(
    parseStatefile(`container: busybox\nport: 8080\ncommand: ["httpd", "-f", "-p", "8080"]\n`),
  );
  const mem0 = await memUsedMiB();
  const t0 = performance.now();
  const clones = await cloneContainer(rt, parent.id, 100);
  const ms = performance.now() - t0;
  const mem1 = await memUsedMiB();
  console.log(
    `100 clones in parallel: ${ms.toFixed(0)} ms total, +${(mem1 - mem0).toFixed(0)} MiB (goal < 150 ms, < 50 MB)`,
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
  try {
    const rt = await ContainerRuntime.open(`${tmp}/data`);
    await writeOciLayout(`${tmp}/oci`, { layers: [await busyboxLayer()] }, "busybox:latest");
    const [img] = await importImage(rt.images, `${tmp}/oci`, rt.helper);
    await trueStartToExit(rt, tmp, rt.images.layerPath(img.layers[0]));
    await firstHttp200(rt);
    await hundredClones(rt);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runContainerBench();
