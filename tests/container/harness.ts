/**
 * Shared set-up for the container end-to-end tests: one temp data dir and one imported busybox image per test
 * file, a reason to skip when containers cannot run here, and a leak check run after every test.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { busyboxLayer, haveBusybox, writeOciLayout } from "./fixture.ts";
import { ContainerRuntime, containerSupportProblem } from "../../runtime/container/runtime.ts";
import { importImage } from "../../runtime/container/images/import.ts";
import type { ContainerRecord } from "../../runtime/container/records.ts";

export async function skipReason(): Promise<string | null> {
  const problem = await containerSupportProblem();
  if (problem) return problem;
  if (!(await haveBusybox())) return "busybox-static is not installed (apt-get install -y busybox-static)";
  return null;
}

export const SKIP = await skipReason();
if (SKIP) console.log(`container tests skipped: ${SKIP}`);

/** Test options: sanitizers off because containers are supervised by detached helper processes. */
export function e2e(name: string, fn: (h: Harness) => Promise<void>): Deno.TestDefinition {
  return {
    name: SKIP ? `${name} (skipped: ${SKIP})` : name,
    ignore: SKIP !== null,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const h = await Harness.get();
      const before = await h.rt.listContainers();
      try {
        await fn(h);
      } finally {
        await h.cleanupSince(before.map((r) => r.id));
      }
    },
  };
}

export class Harness {
  static #instance: Promise<Harness> | undefined;
  seen: ContainerRecord[] = [];
  private constructor(readonly tmp: string, readonly rt: ContainerRuntime) {}

  static get(): Promise<Harness> {
    Harness.#instance ??= (async () => {
      const tmp = await Deno.makeTempDir({ prefix: "tau-ctest-" });
      const rt = await ContainerRuntime.open(`${tmp}/data`);
      await writeOciLayout(`${tmp}/oci`, { layers: [await busyboxLayer()] }, "busybox:latest");
      await importImage(rt.images, `${tmp}/oci`, rt.helper);
      return new Harness(tmp, rt);
    })();
    return Harness.#instance;
  }

  /** Removes every container a test created, then checks nothing of them is left on the host. */
  async cleanupSince(keep: string[]) {
    const created = (await this.rt.listContainers()).filter((r) => !keep.includes(r.id));
    for (const r of created) await this.rt.removeContainer(r.id, true);
    await assertNoLeaks(this.rt.dataDir, created);
  }
}

/** The last test of each file: removes the temp dir (images, helper binary). */
export function finalCleanup(): Deno.TestDefinition {
  return {
    name: "container: remove test data",
    ignore: SKIP !== null,
    fn: async () => {
      const h = await Harness.get();
      const left = await h.rt.listContainers();
      await h.rt.close(); // a pool of network namespaces would stay mounted in the run dir
      await Deno.remove(h.tmp, { recursive: true });
      await Deno.remove(h.rt.runRoot, { recursive: true }).catch(() => {});
      assertEquals(left.map((r) => r.id), [], "containers left at the end");
    },
  };
}

export async function assertNoLeaks(dataDir: string, gone: ContainerRecord[]) {
  const mounts = await Deno.readTextFile("/proc/self/mountinfo");
  assert(!mounts.includes(dataDir), `a mount under ${dataDir} was left behind`);
  for (const r of gone) {
    for (const dir of r.cgroups) {
      assertEquals(await Deno.stat(dir).then(() => true, () => false), false, `cgroup ${dir} was left behind`);
    }
    assertEquals(await Deno.stat(`${dataDir}/run/${r.id}`).then(() => true, () => false), false, "state dir left");
  }
  const netns = new Set(gone.map((r) => r.netns).filter(Boolean));
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const ns = await Deno.readLink(`/proc/${e.name}/ns/net`).catch(() => null);
    // The kernel hands a freed namespace's number to the next one made: a process inside another live container
    // (test files run in parallel) may show a removed container's "net:[N]": one of another live container
    // (inOtherContainer) is not one of theirs.
    if (ns && netns.has(ns) && !(await inOtherContainer(e.name, gone))) {
      throw new Error(`process ${e.name} still runs in a removed container's network namespace`);
    }
    const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "");
    const stat = await Deno.readTextFile(`/proc/${e.name}/stat`).catch(() => "");
    const zombie = stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
    if (!zombie && gone.some((r) => cmd.includes(`/run/${r.id}/`))) {
      throw new Error(`helper process ${e.name} of a removed container still runs`);
    }
  }
}

/**
 * Whether process `pid` belongs to a live container other than the removed ones: by its cgroup (`tau-<id>`), or,
 * for a container without cgroups (no limits: cgroups.ts), by its supervisor, the nearest `tau-ns-helper run`
 * among its ancestors (a container's init is a fork of it too), whose arguments name the ids it started. A leftover
 * of a removed container has no live supervisor of another container above it, so it is never taken for one.
 */
async function inOtherContainer(pid: string, gone: ContainerRecord[]): Promise<boolean> {
  const isGone = (id: string) => gone.some((r) => r.id === id);
  const cgroups = await Deno.readTextFile(`/proc/${pid}/cgroup`).catch(() => "");
  const ids = [...cgroups.matchAll(/\/tau[-/]([0-9a-f]{12})$/gm)].map((m) => m[1]);
  if (ids.length > 0) return ids.every((id) => !isGone(id));
  let p = pid;
  for (let hops = 0; hops < 64 && Number(p) > 1; hops++) {
    const argv = (await Deno.readTextFile(`/proc/${p}/cmdline`).catch(() => "")).split("\0");
    if (argv[0]?.includes("tau-ns-helper") && argv[1] === "run") {
      const batch = argv.indexOf("--batch");
      const started = batch > 0
        ? argv[batch + 1].split(",")
        : [...argv.join(" ").matchAll(/\/([0-9a-f]{12})\/upper/g)].map((m) => m[1]);
      return started.length > 0 && !started.some(isGone);
    }
    const stat = await Deno.readTextFile(`/proc/${p}/stat`).catch(() => "");
    p = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] ?? "0";
  }
  return false;
}

/** GET through the published port, retrying (bounded) while the server inside starts. */
export async function httpGet(port: number, path = "/"): Promise<{ status: number; body: string }> {
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { connection: "close" } });
      return { status: res.status, body: await res.text() };
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 30));
    }
  }
  throw new Error(`no HTTP answer on 127.0.0.1:${port}: ${last}`);
}
