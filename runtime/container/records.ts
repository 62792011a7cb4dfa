/**
 * Container records on disk: `<data>/run/<id>/container.json` plus the helper's status.jsonl, the log, the
 * overlay upper/work dirs and the port sockets. The helper may outlive tau, so liveness is always re-derived from
 * /proc (pid plus start time, to survive pid reuse) and the status file, never trusted from the record alone.
 */
import type { ContainerSpec } from "./statefile.ts";

export interface PublishedPort {
  container: number;
  host: number;
  /** Unix socket in the host filesystem bridged to 127.0.0.1:<container> inside the container */
  socket: string;
}

export type ContainerStatus = "running" | "exited" | "failed";

export interface ContainerRecord {
  id: string;
  name: string;
  image: string;
  imageId: string;
  spec: ContainerSpec;
  command: string[];
  env: string[];
  workdir?: string;
  lowerdirs: string[];
  /** snapshot layers this container owns (made by clone); removed with the last user */
  snapshot?: string;
  /** host uid of the container's root (its user namespace, see userns.ts); absent: it runs without one */
  uidBase?: number;
  /** the top lowerdirs stored in host uids already: clone snapshots of a container with a user namespace */
  shiftedLayers?: number;
  createdAt: string;
  status: ContainerStatus;
  supervisorPid?: number;
  supervisorStart?: string;
  initPid?: number;
  /** "net:[inode]" of the container, for leak checks */
  netns?: string;
  ports: PublishedPort[];
  cgroups: string[];
  /** where only the container's devices may be opened (cgroups.ts); on v1 shared by all, so not in `cgroups` */
  deviceCgroup?: string;
  /** Who started it and why: a node marks its deployed containers here (`tau.key`), the CLI leaves it empty. */
  labels?: Record<string, string>;
  exitCode?: number;
  oomKilled?: boolean;
  error?: string;
}

export function runDir(dataDir: string, id: string): string {
  return `${dataDir}/run/${id}`;
}

export async function writeRecord(dataDir: string, rec: ContainerRecord): Promise<void> {
  const path = `${runDir(dataDir, rec.id)}/container.json`;
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(rec, null, 2));
  await Deno.rename(`${path}.tmp`, path);
}

/**
 * The same, without leaving the thread: starts write a record twice per container, and for 100 clones the async
 * form's hops to Deno's blocking pool cost more than the writes (tmpfs, see run_root.ts): 100 records took 14 ms
 * that way and 6 ms in line (medians of 11, load ~10).
 */
export function writeRecordSync(dataDir: string, rec: ContainerRecord): void {
  const path = `${runDir(dataDir, rec.id)}/container.json`;
  Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify(rec, null, 2));
  Deno.renameSync(`${path}.tmp`, path);
}

export async function readRecord(dataDir: string, id: string): Promise<ContainerRecord | null> {
  try {
    return JSON.parse(await Deno.readTextFile(`${runDir(dataDir, id)}/container.json`));
  } catch {
    return null;
  }
}

export async function allRecords(dataDir: string): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = [];
  try {
    for await (const e of Deno.readDir(`${dataDir}/run`)) {
      if (!e.isDirectory || e.name.startsWith(".")) continue;
      const rec = await readRecord(dataDir, e.name);
      if (rec) out.push(rec);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** Field 22 of /proc/<pid>/stat: start time in clock ticks; null when the process is gone. */
export async function processStart(pid: number): Promise<string | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return null;
    return fields[19];
  } catch {
    return null;
  }
}

export interface StatusEvent {
  event: "started" | "exited" | "error";
  pid?: number;
  supervisor?: number;
  /** the supervisor's start time (clock ticks), so tau can tell it from a later process with the same pid */
  supervisorStart?: string;
  /** "net:[inode]" of the container */
  netns?: string;
  /** batch starts: which container the event is about */
  id?: string;
  ports?: { container: number; host: number }[];
  code?: number;
  oomKilled?: boolean;
  message?: string;
}

export async function readStatusEvents(dataDir: string, id: string): Promise<StatusEvent[]> {
  const text = await Deno.readTextFile(`${runDir(dataDir, id)}/status.jsonl`).catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

export async function isSupervisorAlive(rec: ContainerRecord): Promise<boolean> {
  if (!rec.supervisorPid) return false;
  return (await processStart(rec.supervisorPid)) === rec.supervisorStart;
}
