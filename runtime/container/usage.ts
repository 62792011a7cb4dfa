/**
 * What a container uses, without needing a cgroup: a container gets cgroups only for the limits it has
 * (cgroups.ts), so the accounting reads /proc instead. Its processes are those in its pid namespace (live while
 * the container runs, so its number cannot belong to another). CPU counts every process that ran in it: a live
 * process's own time plus that of the children it reaped; the init reaps every orphan, so nothing is lost but what
 * `tau container exec` sessions reaped outside. Memory is the PSS of its processes (shared pages split among their
 * users), and, with a memory limit, what its memory cgroup was charged (that includes page cache and the files it
 * wrote to its tmpfs upper dir).
 */
import type { ContainerRecord } from "./records.ts";

export interface ContainerUsage {
  processes: number;
  /** user + system CPU time, in ms (clock-tick resolution, 10 ms on most kernels) */
  cpuMs: number;
  /** proportional set size of its processes */
  pssBytes: number;
  /** resident set size of its processes (shared pages counted in each) */
  rssBytes: number;
  /** charged to its memory cgroup; only when it has a memory limit */
  memoryCgroupBytes?: number;
}

/** Clock ticks per second for /proc/<pid>/stat: USER_HZ is 100 on every Linux architecture tau runs on. */
const TICKS_PER_SECOND = 100;

/** Pids of the processes in `rec`'s pid namespace (none when it is not running). */
export async function containerPids(rec: ContainerRecord): Promise<number[]> {
  if (rec.status !== "running" || !rec.initPid) return [];
  const ns = await Deno.readLink(`/proc/${rec.initPid}/ns/pid`).catch(() => null);
  if (!ns) return [];
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    if ((await Deno.readLink(`/proc/${e.name}/ns/pid`).catch(() => null)) === ns) pids.push(Number(e.name));
  }
  return pids;
}

export async function containerUsage(rec: ContainerRecord): Promise<ContainerUsage> {
  const usage: ContainerUsage = { processes: 0, cpuMs: 0, pssBytes: 0, rssBytes: 0 };
  for (const pid of await containerPids(rec)) {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => null);
    if (!stat) continue; // exited meanwhile
    // Fields after "(comm)": state is 3, utime 14, stime 15, cutime 16, cstime 17 (proc(5)).
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    usage.cpuMs += (ticks * 1000) / TICKS_PER_SECOND;
    usage.processes++;
    const rollup = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`).catch(() => "");
    usage.pssBytes += Number(rollup.match(/^Pss:\s+(\d+) kB/m)?.[1] ?? 0) * 1024;
    usage.rssBytes += Number(rollup.match(/^Rss:\s+(\d+) kB/m)?.[1] ?? 0) * 1024;
  }
  for (const dir of rec.cgroups) {
    for (const file of ["memory.usage_in_bytes", "memory.current"]) {
      const v = await Deno.readTextFile(`${dir}/${file}`).catch(() => null);
      if (v !== null) usage.memoryCgroupBytes = (usage.memoryCgroupBytes ?? 0) + Number(v.trim());
    }
  }
  return usage;
}
