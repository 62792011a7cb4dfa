/**
 * Starting containers: everything between a ContainerSpec and running helpers. One container is one helper
 * invocation; N copies of the same spec (clone) are one invocation with `--batch`, which forks a supervisor per
 * container, so the per-container cost is a fork in C plus a record on disk, not a process spawn from Deno.
 */
import { TauError } from "../errors.ts";
import { detectCgroupLayout, planCgroups, prepareV2Parent } from "./cgroups.ts";
import { spawnHelperBatch, spawnHelperRun } from "./helper_process.ts";
import { type ContainerRecord, processStart, runDir, type StatusEvent, writeRecordSync } from "./records.ts";
import type { ContainerSpec } from "./statefile.ts";
import type { ImageStore } from "./images/store.ts";
import type { NetnsPool } from "./netns_pool.ts";
import { USERNS_BASE, usernsAvailable } from "./userns.ts";

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface StartedContainer {
  id: string;
  name: string;
  initPid: number;
  ports: { container: number; host: number; socket: string }[];
  /** only with `follow: true`: resolves when the container exits */
  exited?: Promise<StatusEvent>;
}

export interface StartOptions {
  /** keep reading the helper's status pipe and expose `exited` (benchmarks, foreground runs; single starts only) */
  follow?: boolean;
  /** clone: the complete layer list (top first) instead of the image's */
  lowerdirs?: string[];
  snapshot?: string;
  name?: string;
  nameSuffix?: string;
  /** batch starts: container i is named `<namePrefix>-<id>` */
  namePrefix?: string;
  labels?: Record<string, string>;
  /** clone: run as the parent did (with or without a user namespace), whatever the default is now */
  userns?: boolean;
  /** clone: how many of the top `lowerdirs` are snapshots in host uids (see userns.ts) */
  shiftedLayers?: number;
}

export interface LaunchResult {
  started: StartedContainer[];
  errors: Error[];
}

interface Launcher {
  dataDir: string;
  helper: string;
  images: ImageStore;
  netns: NetnsPool;
}

function randomId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Starts `count` containers of one spec; with count > 1 they share one helper invocation. */
export async function launchContainers(
  rt: Launcher,
  spec: ContainerSpec,
  opts: StartOptions,
  count: number,
): Promise<LaunchResult> {
  const image = await rt.images.resolve(spec.image);
  const command = spec.command ?? [...image.config.entrypoint, ...image.config.cmd];
  if (command.length === 0) {
    throw new TauError(`image ${spec.image} has no default command`, { hint: "set `command` in the Statefile" });
  }
  const envMap = new Map<string, string>();
  for (const kv of [DEFAULT_PATH, ...image.config.env, ...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`)]) {
    const eq = kv.indexOf("=");
    if (eq > 0) envMap.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  const env = [...envMap].map(([k, v]) => `${k}=${v}`);
  const lowerdirs = opts.lowerdirs ?? [...image.layers].reverse().map((l) => rt.images.layerPath(l));
  const uidBase = (opts.userns ?? usernsAvailable()) ? USERNS_BASE : undefined;
  const shiftedLayers = uidBase === undefined ? 0 : opts.shiftedLayers ?? 0;
  const layout = await detectCgroupLayout();
  await prepareV2Parent(layout);
  const baseName = spec.name ?? spec.image.replace(/[:@].*$/, "").split("/").pop()!;
  const batch = count > 1;
  const ids = Array.from({ length: count }, randomId);
  const nameOf = (id: string) =>
    opts.namePrefix
      ? `${opts.namePrefix}-${id}`
      : opts.name ?? (spec.name ? `${spec.name}${opts.nameSuffix ?? ""}` : `${baseName}-${id.slice(0, 4)}`);
  const createdAt = new Date().toISOString();
  const recs = new Map<string, ContainerRecord>();
  for (const id of ids) {
    const dir = runDir(rt.dataDir, id);
    const own = planCgroups(id, spec.limits, layout);
    const rec: ContainerRecord = {
      id,
      name: nameOf(id),
      image: spec.image,
      imageId: image.id,
      spec,
      command,
      env,
      workdir: spec.workdir ?? image.config.workdir,
      lowerdirs,
      snapshot: opts.snapshot,
      ...(uidBase !== undefined ? { uidBase, shiftedLayers } : {}),
      createdAt,
      status: "running",
      ports: spec.ports.map((p) => ({ container: p.container, host: p.host, socket: `${dir}/p${p.container}.sock` })),
      cgroups: own.dirs,
      deviceCgroup: own.devices,
      ...(opts.labels ? { labels: opts.labels } : {}),
    };
    recs.set(id, rec);
  }
  // The helper makes upper/work/rootfs itself; records must exist before it runs (crash clean-up finds them).
  for (const rec of recs.values()) {
    Deno.mkdirSync(runDir(rt.dataDir, rec.id));
    writeRecordSync(rt.dataDir, rec);
  }
  // Pre-made network namespaces from the pool when one runs (netns_pool.ts); the helper makes the others.
  const pooled = await rt.netns.running();
  // In a batch every per-container value is a template: the helper replaces "{}" with each container's id.
  const token = batch ? "{}" : ids[0];
  const dir = runDir(rt.dataDir, token);
  const plan = planCgroups(token, spec.limits, layout);
  const args = ["run", "--lower", lowerdirs.join(":"), "--upper", `${dir}/upper`, "--work", `${dir}/work`];
  args.push("--rootfs", `${dir}/rootfs`, "--log", `${dir}/log`, "--status", `${dir}/status.jsonl`);
  if (pooled) args.push("--netns-pool", rt.netns.socket);
  const hostname = spec.hostname ??
    (batch ? `${(opts.namePrefix ?? baseName).slice(0, 50)}-{}` : recs.get(ids[0])!.name.slice(0, 63));
  args.push("--hostname", hostname);
  const workdir = spec.workdir ?? image.config.workdir;
  if (workdir) args.push("--cwd", workdir);
  for (const m of spec.mounts) args.push("--mount", m.source, m.target, m.readonly ? "ro" : "rw");
  for (const p of spec.ports) args.push("--port", String(p.container), String(p.host), `${dir}/p${p.container}.sock`);
  for (const d of plan.dirs) args.push("--cgroup", d);
  for (const [f, v] of plan.settings) args.push("--cgset", f, v);
  args.push("--device-cgroup", plan.devices);
  if (uidBase !== undefined) args.push("--userns", String(uidBase), String(shiftedLayers));
  for (const e of env) args.push("--env", e);
  if (batch) args.push("--batch", ids.join(","));
  args.push("--", ...command);

  const outcomes = new Map<string, { started: StatusEvent; exited?: Promise<StatusEvent> } | Error>();
  if (batch) {
    for (const [id, out] of await spawnHelperBatch(rt.helper, args, ids)) {
      outcomes.set(id, out instanceof Error ? out : { started: out });
    }
  } else {
    try {
      outcomes.set(ids[0], await spawnHelperRun(rt.helper, args, opts.follow ?? false));
    } catch (err) {
      outcomes.set(ids[0], err as Error);
    }
  }
  const result: LaunchResult = { started: [], errors: [] };
  await Promise.all(ids.map(async (id) => {
    const rec = recs.get(id)!;
    const out = outcomes.get(id) ?? new TauError(`container ${rec.name} did not report back from its helper`);
    if (out instanceof Error) {
      // Nothing ran, so nothing is worth keeping (the error tells the user what went wrong).
      await Deno.remove(runDir(rt.dataDir, id), { recursive: true }).catch(() => {});
      result.errors.push(out);
      return;
    }
    const ev = out.started;
    rec.supervisorPid = ev.supervisor;
    rec.supervisorStart = ev.supervisorStart ?? (await processStart(ev.supervisor!)) ?? undefined;
    rec.initPid = ev.pid;
    rec.netns = ev.netns || ((await Deno.readLink(`/proc/${ev.pid}/ns/net`).catch(() => undefined)) ?? undefined);
    rec.ports = rec.ports.map((p, i) => ({ ...p, host: ev.ports?.[i]?.host ?? p.host }));
    writeRecordSync(rt.dataDir, rec);
    result.started.push({ id, name: rec.name, initPid: ev.pid!, ports: rec.ports, exited: out.exited });
  }));
  result.started.sort((a, b) => ids.indexOf(a.id) - ids.indexOf(b.id));
  return result;
}
