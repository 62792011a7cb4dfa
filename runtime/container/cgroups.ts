/**
 * Picks cgroup directories and limit files for a container on v1, v2 or hybrid hosts (v1 controllers mounted
 * under /sys/fs/cgroup/<controller>, v2 under /sys/fs/cgroup or /sys/fs/cgroup/unified). The helper only executes
 * the plan, so the layout logic stays here where it can be unit tested.
 */
import { TauError } from "../errors.ts";

export interface Limits {
  memoryBytes?: number;
  cpus?: number;
  pids?: number;
}

export interface CgroupPlan {
  dirs: string[];
  settings: [file: string, value: string][];
  /**
   * Where the helper allows only the container's devices (helper/devices.c): on v1 one devices cgroup shared by
   * every container (not in `dirs`: never removed), else the container's own v2 cgroup with a BPF program.
   */
  devices: string;
}

export interface CgroupLayout {
  /** controller -> v1 mount point */
  v1: Record<string, string>;
  /** v2 mount point and the controllers it offers, if any */
  v2?: { mount: string; controllers: string[] };
  /** controller (or "" for v2) -> this process's cgroup path */
  self: Record<string, string>;
}

const CONTROLLERS = ["memory", "pids", "cpu"] as const;
/** Not a limit: the device allow-list (runtime/container/helper/devices.c) lives in this controller on v1. */
const DEVICES = "devices";
const CPU_PERIOD_US = 100_000;

export async function detectCgroupLayout(): Promise<CgroupLayout> {
  const mountinfo = await Deno.readTextFile("/proc/self/mountinfo");
  const selfText = await Deno.readTextFile("/proc/self/cgroup");
  const layout: CgroupLayout = { v1: {}, self: {} };
  for (const line of mountinfo.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!post) continue;
    const [fstype, , superOpts] = post.split(" ");
    const mountPoint = pre.split(" ")[4];
    if (fstype === "cgroup") {
      for (const opt of superOpts.split(",")) {
        if ((CONTROLLERS as readonly string[]).includes(opt) || opt === DEVICES) layout.v1[opt] = mountPoint;
      }
    } else if (fstype === "cgroup2" && !layout.v2) {
      const controllers = (await Deno.readTextFile(`${mountPoint}/cgroup.controllers`).catch(() => "")).trim();
      layout.v2 = { mount: mountPoint, controllers: controllers ? controllers.split(/\s+/) : [] };
    }
  }
  for (const line of selfText.split("\n")) {
    const [, ctrls, path] = line.split(":");
    if (path === undefined) continue;
    for (const c of ctrls ? ctrls.split(",") : [""]) layout.self[c] = path;
  }
  return layout;
}

/** Why containers cannot be confined on this host (no device cgroup of either kind), or null. */
export function deviceCgroupProblem(layout: CgroupLayout): string | null {
  if (layout.v1[DEVICES] || layout.v2) return null;
  return "this host has no device cgroup (neither the v1 devices controller nor a cgroup2 mount), so a " +
    "container could open any device node";
}

/** v1 has no "no internal processes" rule, so nest under our own cgroup: limits stay inside tau's own budget. */
function v1Dir(layout: CgroupLayout, ctrl: string, name: string): string {
  const own = layout.self[ctrl] ?? "/";
  return `${layout.v1[ctrl]}${own === "/" ? "" : own}/tau-${name}`;
}

/** Whether `limits` sets anything that `ctrl` enforces. */
function limited(ctrl: (typeof CONTROLLERS)[number], l: Limits): boolean {
  return Boolean(ctrl === "memory" ? l.memoryBytes : ctrl === "pids" ? l.pids : l.cpus);
}

/**
 * Pure: the directories to create and the files to write for `limits`. A controller gets a cgroup only when the
 * container has a limit it enforces: making, joining and removing the three v1 cgroups of an unlimited container
 * was ~1.3 ms of CPU per start when 100 started at once (the kernel's cgroup_mutex is global), for accounting that
 * /proc gives as well (usage.ts). The device allow-list is kept in every case.
 */
export function planCgroups(id: string, limits: Limits, layout: CgroupLayout): CgroupPlan {
  const problem = deviceCgroupProblem(layout);
  if (problem) {
    throw new TauError(`cannot run containers: ${problem}`, { hint: "mount cgroup2 or the v1 devices controller" });
  }
  const plan: CgroupPlan = { dirs: [], settings: [], devices: "" };
  let v2Needed = false;
  for (const ctrl of CONTROLLERS) {
    if (!limited(ctrl, limits)) continue;
    if (layout.v1[ctrl]) {
      const dir = v1Dir(layout, ctrl, id);
      plan.dirs.push(dir);
      plan.settings.push(...v1Settings(ctrl, dir, limits));
    } else if (layout.v2?.controllers.includes(ctrl)) {
      v2Needed = true;
    }
  }
  if (layout.v1[DEVICES]) plan.devices = v1Dir(layout, DEVICES, "devices");
  // Without a v1 devices controller the allow-list is a BPF program on the v2 cgroup, which then always exists.
  if ((v2Needed || !plan.devices) && layout.v2) {
    const dir = `${layout.v2.mount}/tau/${id}`;
    plan.dirs.push(dir);
    plan.devices ||= dir;
    for (const ctrl of CONTROLLERS) {
      if (limited(ctrl, limits) && !layout.v1[ctrl] && layout.v2.controllers.includes(ctrl)) {
        plan.settings.push(...v2Settings(ctrl, dir, limits));
      }
    }
  }
  return plan;
}

function v1Settings(ctrl: string, dir: string, l: Limits): [string, string][] {
  if (ctrl === "memory" && l.memoryBytes) return [[`${dir}/memory.limit_in_bytes`, String(l.memoryBytes)]];
  if (ctrl === "pids" && l.pids) return [[`${dir}/pids.max`, String(l.pids)]];
  if (ctrl === "cpu" && l.cpus) {
    return [[`${dir}/cpu.cfs_period_us`, String(CPU_PERIOD_US)], [
      `${dir}/cpu.cfs_quota_us`,
      String(Math.max(1000, Math.round(l.cpus * CPU_PERIOD_US))),
    ]];
  }
  return [];
}

function v2Settings(ctrl: string, dir: string, l: Limits): [string, string][] {
  if (ctrl === "memory" && l.memoryBytes) {
    return [[`${dir}/memory.max`, String(l.memoryBytes)], [`${dir}/memory.swap.max`, "0"]];
  }
  if (ctrl === "pids" && l.pids) return [[`${dir}/pids.max`, String(l.pids)]];
  if (ctrl === "cpu" && l.cpus) {
    return [[`${dir}/cpu.max`, `${Math.max(1000, Math.round(l.cpus * CPU_PERIOD_US))} ${CPU_PERIOD_US}`]];
  }
  return [];
}

/** v2 needs controllers enabled in every ancestor's subtree_control before a child can use them. */
export async function prepareV2Parent(layout: CgroupLayout): Promise<void> {
  const v2 = layout.v2;
  if (!v2) return;
  const wanted = CONTROLLERS.filter((c) => !layout.v1[c] && v2.controllers.includes(c));
  if (wanted.length === 0 && layout.v1[DEVICES]) return;
  await Deno.mkdir(`${v2.mount}/tau`, { recursive: true });
  if (wanted.length === 0) return;
  const enable = wanted.map((c) => `+${c}`).join(" ");
  for (const dir of [v2.mount, `${v2.mount}/tau`]) {
    await Deno.writeTextFile(`${dir}/cgroup.subtree_control`, enable).catch(() => {});
  }
}

/** Removes cgroups left by a helper that was killed (kill -9): kills stragglers first. */
export async function removeCgroups(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        await Deno.remove(dir);
        break;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) break;
        const procs = await Deno.readTextFile(`${dir}/cgroup.procs`).catch(() => "");
        for (const pid of procs.split("\n").filter(Boolean)) {
          try {
            Deno.kill(Number(pid), "SIGKILL");
          } catch { /* already gone */ }
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}
