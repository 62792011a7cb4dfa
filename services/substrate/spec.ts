/**
 * What a deployed container is, apart from running it: its key (identity across deploys), its label in logs, the
 * ContainerSpec the driver gets, and the error that explains why one stopped.
 */
import { TauError } from "../../runtime/errors.ts";
import type { ContainerRuntime } from "../../runtime/container/runtime.ts";
import type { ContainerRecord } from "../../runtime/container/records.ts";
import type { ContainerSpec } from "../../runtime/container/statefile.ts";
import type { ContainerDeployment } from "../tns/records.ts";

export function containerLabel(c: { name: string; app?: string }, project?: string): string {
  const name = c.app ? `${c.app}/${c.name}` : c.name;
  return project ? `${project}/${name}` : name;
}

/** Hash of everything that changes what runs; containers with equal keys are interchangeable. */
export async function containerKey(project: string, c: Omit<ContainerDeployment, "key" | "routes" | "id">) {
  const values = [project, c.app ?? "", c.name, c.imageId, c.port ?? 0, c.command ?? null, c.env, c.limits];
  const text = JSON.stringify([...values, c.replicas, c.workdir ?? "", c.hostname ?? ""]);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(digest.subarray(0, 10), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Inside every container of a project: one Unix socket per sibling container with a port (`<name>.sock`). */
export const SIBLINGS_TARGET = "/run/tau";

/** The socket file name of a container for its siblings: `web.sock`, `shop.web.sock` for application `shop`. */
export function siblingSocketName(c: { name: string; app?: string }): string {
  return `${c.app ? `${c.app}.` : ""}${c.name}.sock`;
}

/**
 * What the container driver runs for a deployed container: only a Unix socket for its port, and no mount but the
 * project's sibling sockets (`siblingsDir`, read-only at /run/tau).
 */
export function containerSpec(project: string, c: ContainerDeployment, siblingsDir: string): ContainerSpec {
  return {
    name: `${project}-${c.app ? `${c.app}-` : ""}${c.name}`.replace(/[^a-zA-Z0-9_.-]/g, "-").slice(0, 50),
    image: c.imageId,
    command: c.command,
    env: c.env,
    ports: c.port ? [{ container: c.port, host: -1 }] : [],
    mounts: [{ source: siblingsDir, target: SIBLINGS_TARGET, readonly: true }],
    limits: c.limits,
    replicas: c.replicas,
    workdir: c.workdir,
    hostname: c.hostname,
  };
}

/** Why a container stopped, with its last output: for build logs and the node log. */
export async function crashError(rt: ContainerRuntime, rec: ContainerRecord, label: string): Promise<TauError> {
  const lines = await rt.lastLogLines(rec.id, 5);
  const how = rec.oomKilled
    ? "was killed for using more than its memory limit"
    : rec.exitCode !== undefined
    ? `exited with code ${rec.exitCode}`
    : `failed (${rec.error ?? "unknown reason"})`;
  return new TauError(`container ${label} ${how} before it was ready`, {
    hint: lines.length ? `its last output: ${lines.join(" | ")}` : "it printed nothing; check its command and image",
  });
}
