/**
 * The container driver: start, stop, list, exec, logs, remove and clone containers, each one supervised by a
 * detached tau-ns-helper process. Every entry point first re-derives state from /proc and the helper's status
 * file, and cleans up after helpers that died without cleaning up (kill -9): cgroups, sockets, scratch dirs.
 * `<data>/run` may be a symlink to a tmpfs (see run_root.ts).
 * Namespaces and mounts need no such care: they live only inside the container and vanish with it.
 */
import { TauError } from "../errors.ts";
import { detectCgroupLayout, deviceCgroupProblem, removeCgroups } from "./cgroups.ts";
import { ensureHelper } from "./helper_build.ts";
import { ensureRunDir } from "./run_root.ts";
import { launchContainers, type LaunchResult, type StartedContainer, type StartOptions } from "./launch.ts";
import { ImageStore } from "./images/store.ts";
import { NetnsPool } from "./netns_pool.ts";
import {
  allRecords,
  type ContainerRecord,
  isSupervisorAlive,
  readRecord,
  readStatusEvents,
  runDir,
  writeRecord,
} from "./records.ts";
import type { ContainerSpec } from "./statefile.ts";
import { checkHostResources } from "./statefile.ts";
import { type ContainerUsage, containerUsage } from "./usage.ts";

/** The local cloud's container store (`tau dev` uses <data>/containers): images imported here are deployable. */
export const DEFAULT_DATA_DIR = ".tau/dev/containers";

export type { LaunchResult, StartedContainer, StartOptions } from "./launch.ts";
export type { ContainerUsage } from "./usage.ts";

/** Why containers cannot run here, or null when they can (root, namespaces, overlayfs, a C compiler). */
export async function containerSupportProblem(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "containers need Linux";
  if (Deno.uid() !== 0) return "containers need root (namespaces, mounts and cgroups are privileged)";
  for (const ns of ["mnt", "pid", "net", "uts", "ipc"]) {
    if (!(await Deno.stat(`/proc/self/ns/${ns}`).then(() => true, () => false))) {
      return `this kernel has no ${ns} namespaces`;
    }
  }
  const fs = await Deno.readTextFile("/proc/filesystems").catch(() => "");
  if (!/\boverlay\b/.test(fs)) return "this kernel has no overlayfs";
  return deviceCgroupProblem(await detectCgroupLayout());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a process is inside `netns` or holds it open (the port forwarders do, from the host's namespace). */
async function usesNamespace(pid: string, netns: string): Promise<boolean> {
  if ((await Deno.readLink(`/proc/${pid}/ns/net`).catch(() => null)) === netns) return true;
  try {
    for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
      if ((await Deno.readLink(`/proc/${pid}/fd/${fd.name}`).catch(() => null)) === netns) return true;
    }
  } catch { /* gone, or not ours to read */ }
  return false;
}

/**
 * SIGKILLs every process of a dead supervisor's container: those in its network namespace and the forwarders
 * holding it. They normally die of their parent-death signal; this covers the window until they have, and waits
 * (bounded) until none is left.
 */
async function killNamespace(netns: string): Promise<void> {
  for (let round = 0; round < 100; round++) {
    let found = 0;
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
      if (!(await usesNamespace(e.name, netns))) continue;
      found++;
      try {
        Deno.kill(Number(e.name), "SIGKILL");
      } catch { /* exiting already */ }
    }
    if (found === 0) return;
    await sleep(10);
  }
}

export interface RuntimeOptions {
  /**
   * How many network namespaces to keep made ahead (netns_pool.ts): a pool process started by open(), which fills
   * itself in the background, and ended by close(). 0 (the default): none here; a pool another tau runs is used.
   */
  netnsPool?: number;
}

export class ContainerRuntime {
  readonly images: ImageStore;
  readonly netns: NetnsPool;
  private constructor(
    readonly dataDir: string,
    readonly helper: string,
    readonly runRoot: string,
    netnsPool: number,
  ) {
    this.images = new ImageStore(dataDir);
    this.netns = new NetnsPool(runRoot, helper, netnsPool);
  }

  /** Checks support, builds the helper if needed and cleans up after anything that was killed. */
  static async open(dataDir = DEFAULT_DATA_DIR, opts: RuntimeOptions = {}): Promise<ContainerRuntime> {
    const problem = await containerSupportProblem();
    if (problem) throw new TauError(`cannot run containers: ${problem}`, { hint: "run tau as root on Linux" });
    await Deno.mkdir(dataDir, { recursive: true });
    const abs = await Deno.realPath(dataDir);
    const rt = new ContainerRuntime(abs, await ensureHelper(abs), await ensureRunDir(abs), opts.netnsPool ?? 0);
    await rt.collectGarbage();
    rt.netns.start();
    return rt;
  }

  /** Ends the network namespace pool this runtime runs, if any. Containers keep running: they are detached from tau. */
  async close(): Promise<void> {
    await this.netns.close();
  }

  async collectGarbage(): Promise<void> {
    for (
      const [dir, prefixes] of [[`${this.dataDir}/run`, [".trash-"]], [this.dataDir, [".import-"]], [
        this.images.layersDir,
        [],
      ]] as const
    ) {
      try {
        for await (const e of Deno.readDir(dir)) {
          if (prefixes.some((p) => e.name.startsWith(p)) || e.name.includes(".tmp-")) {
            await Deno.remove(`${dir}/${e.name}`, { recursive: true }).catch(() => {});
          }
        }
      } catch { /* directory not created yet */ }
    }
    for (const rec of await allRecords(this.dataDir)) await this.refresh(rec);
  }

  /** Brings a record up to date with reality; cleans up after a supervisor that died without doing so. */
  async refresh(rec: ContainerRecord): Promise<ContainerRecord> {
    if (rec.status !== "running") return rec;
    if (!rec.supervisorPid) {
      // Being started right now by another tau, or that tau died mid-start.
      if (Date.now() - Date.parse(rec.createdAt) < 60_000) return rec;
    } else if (await isSupervisorAlive(rec)) {
      return rec;
    }
    const exited = (await readStatusEvents(this.dataDir, rec.id)).findLast((e) => e.event === "exited");
    if (exited) {
      rec.status = "exited";
      rec.exitCode = exited.code;
      rec.oomKilled = exited.oomKilled;
    } else {
      rec.status = "failed";
      rec.error = "the container's supervisor was killed";
      if (rec.netns) await killNamespace(rec.netns);
      await removeCgroups(rec.cgroups);
      for (const p of rec.ports) await Deno.remove(p.socket).catch(() => {});
    }
    // Another tau (the node retiring a container while `tau container ls` runs) may be removing it right now.
    await writeRecord(this.dataDir, rec).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
    return rec;
  }

  async listContainers(): Promise<ContainerRecord[]> {
    const out = [];
    for (const rec of await allRecords(this.dataDir)) out.push(await this.refresh(rec));
    return out;
  }

  /** By full id, unique id prefix or name. */
  async getContainer(ref: string): Promise<ContainerRecord> {
    // A full id names its state dir: one read instead of every record (removing 100 clones read 100 x 100).
    const byId = /^[0-9a-f]{12}$/.test(ref) ? await readRecord(this.dataDir, ref) : null;
    if (byId) return await this.refresh(byId);
    const all = await allRecords(this.dataDir);
    const exact = all.filter((r) => r.id === ref || r.name === ref);
    const matches = exact.length ? exact : all.filter((r) => r.id.startsWith(ref));
    if (matches.length === 1) return await this.refresh(matches[0]);
    if (matches.length === 0) {
      throw new TauError(`no container ${ref}`, { hint: "tau container ls shows ids and names", status: 404 });
    }
    throw new TauError(`${ref} matches ${matches.length} containers`, { hint: "use more of the id" });
  }

  /** Starts every replica of a Statefile. */
  async run(spec: ContainerSpec, file = "Statefile"): Promise<StartedContainer[]> {
    await checkHostResources(spec, file);
    const started: StartedContainer[] = [];
    for (let i = 0; i < spec.replicas; i++) {
      started.push(await this.startContainer(spec, { nameSuffix: spec.replicas > 1 ? `-${i + 1}` : undefined }));
    }
    return started;
  }

  async startContainer(spec: ContainerSpec, opts: StartOptions = {}): Promise<StartedContainer> {
    const { started, errors } = await launchContainers(this, spec, opts, 1);
    if (errors.length) throw errors[0];
    return started[0];
  }

  /** Starts `count` copies of one spec with a single helper invocation (clone); failures are returned, not thrown. */
  startContainers(spec: ContainerSpec, opts: StartOptions, count: number): Promise<LaunchResult> {
    return launchContainers(this, spec, opts, count);
  }

  /** Polls (bounded) until the container is no longer running. */
  async waitContainer(ref: string, timeoutMs = 30_000): Promise<ContainerRecord> {
    const deadline = Date.now() + timeoutMs;
    let rec = await this.getContainer(ref);
    while (rec.status === "running" && Date.now() < deadline) {
      await sleep(20);
      rec = await this.refresh(rec);
    }
    return rec;
  }

  /** SIGTERM (forwarded to the command by the container's init), then SIGKILL after `timeoutMs`. */
  async stopContainer(ref: string, timeoutMs = 10_000): Promise<ContainerRecord> {
    let rec = await this.getContainer(ref);
    if (rec.status !== "running" || !rec.supervisorPid) return rec;
    const signal = (pid: number | undefined, sig: Deno.Signal) => {
      try {
        if (pid) Deno.kill(pid, sig);
      } catch { /* already gone */ }
    };
    signal(rec.supervisorPid, "SIGTERM");
    rec = await this.waitContainer(rec.id, timeoutMs);
    if (rec.status === "running") {
      // Killing the init ends the whole pid namespace; the supervisor then cleans up as usual.
      signal(rec.initPid, "SIGKILL");
      rec = await this.waitContainer(rec.id, 5_000);
    }
    if (rec.status === "running") {
      signal(rec.supervisorPid, "SIGKILL");
      await sleep(50);
      rec = await this.waitContainer(rec.id, 5_000);
    }
    return rec;
  }

  async removeContainer(ref: string, force = false): Promise<void> {
    let rec = await this.getContainer(ref);
    if (rec.status === "running") {
      if (!force) {
        throw new TauError(`container ${rec.name} is running`, { hint: "stop it first, or use rm --force" });
      }
      rec = await this.stopContainer(rec.id, 2_000);
    }
    // Rename first so a half-deleted container never shows up in `ls`.
    const trash = `${this.dataDir}/run/.trash-${rec.id}`;
    await Deno.rename(runDir(this.dataDir, rec.id), trash);
    await Deno.remove(trash, { recursive: true });
    if (rec.snapshot) {
      const users = (await allRecords(this.dataDir)).filter((r) => r.snapshot === rec.snapshot);
      if (users.length === 0) await Deno.remove(rec.snapshot, { recursive: true }).catch(() => {});
    }
  }

  /** Runs a command in a running container. `capture` returns its output instead of passing the terminal. */
  async execInContainer(
    ref: string,
    command: string[],
    capture = false,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const rec = await this.getContainer(ref);
    if (rec.status !== "running" || !rec.initPid) {
      throw new TauError(`container ${rec.name} is not running`, { hint: "start it with tau container run" });
    }
    const args = ["exec", "--pid", String(rec.initPid)];
    for (const d of rec.cgroups) args.push("--cgroup", d);
    if (rec.deviceCgroup) args.push("--device-cgroup", rec.deviceCgroup);
    for (const e of rec.env) args.push("--env", e);
    if (rec.workdir) args.push("--cwd", rec.workdir);
    args.push("--", ...command);
    const io = capture ? "piped" : "inherit";
    const out = await new Deno.Command(this.helper, {
      args,
      stdin: capture ? "null" : "inherit",
      stdout: io,
      stderr: io,
    })
      .output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: capture ? dec.decode(out.stdout) : "",
      stderr: capture ? dec.decode(out.stderr) : "",
    };
  }

  /** The container's output; with `follow`, keeps yielding until it exits; `fromEnd` skips what is there already. */
  async *logs(ref: string, follow = false, fromEnd = false): AsyncGenerator<Uint8Array> {
    let rec = await this.getContainer(ref);
    const file = await Deno.open(`${runDir(this.dataDir, rec.id)}/log`).catch(() => null);
    if (!file) return;
    try {
      if (fromEnd) await file.seek(0, Deno.SeekMode.End);
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await file.read(buf);
        if (n) {
          yield buf.slice(0, n);
          continue;
        }
        if (!follow) return;
        if (rec.status !== "running") return;
        await sleep(100);
        rec = await this.refresh(rec);
      }
    } finally {
      file.close();
    }
  }

  /** CPU and memory a running container uses (usage.ts); zeros when it is not running. */
  async usage(ref: string): Promise<ContainerUsage> {
    return containerUsage(await this.getContainer(ref));
  }

  /** The container's recent output as text (for crash reports). */
  async lastLogLines(ref: string, lines = 10): Promise<string[]> {
    const rec = await this.getContainer(ref);
    const text = await Deno.readTextFile(`${runDir(this.dataDir, rec.id)}/log`).catch(() => "");
    return text.split("\n").filter(Boolean).slice(-lines);
  }
}
