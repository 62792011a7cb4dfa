/**
 * Instant duplication: snapshot a running container's upper layer as a new read-only layer and start N copies on
 * top of it. The upper dir already is in overlay format (whiteouts, opaque xattrs), so a plain copy that keeps
 * xattrs is a valid lower layer; every copy shares it and the image layers (and their page cache).
 */
import { TauError } from "../errors.ts";
import { runDir } from "./records.ts";
import type { ContainerRuntime, StartedContainer } from "./runtime.ts";

export async function cloneContainer(rt: ContainerRuntime, ref: string, count = 1): Promise<StartedContainer[]> {
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    throw new TauError(`clone count ${count} is out of range`, { hint: "use -n with a number from 1 to 1000" });
  }
  const parent = await rt.getContainer(ref);
  if (parent.status !== "running") {
    throw new TauError(`container ${parent.name} is not running`, { hint: "clone copies a running container" });
  }
  const snapshot = `${rt.dataDir}/snapshots/${parent.id}-${Date.now().toString(36)}`;
  await Deno.mkdir(snapshot, { recursive: true });
  const cp = await new Deno.Command("cp", {
    args: ["-a", "--reflink=auto", `${runDir(rt.dataDir, parent.id)}/upper/.`, snapshot],
    stderr: "piped",
  }).output();
  if (!cp.success) {
    await Deno.remove(snapshot, { recursive: true }).catch(() => {});
    throw new TauError(`cannot snapshot container ${parent.name}`, { detail: new TextDecoder().decode(cp.stderr) });
  }
  // The parent's own layers already include the image; clones reuse them as-is.
  const spec = { ...parent.spec, command: parent.command, ports: parent.spec.ports.map((p) => ({ ...p, host: 0 })) };
  // One helper invocation starts all copies (a supervisor forked per copy), so N costs little more than one.
  const { started, errors } = await rt.startContainers(spec, {
    lowerdirs: [snapshot, ...parent.lowerdirs],
    snapshot,
    // The snapshot holds what the parent wrote, stored in host uids when it has a user namespace (userns.ts).
    userns: parent.uidBase !== undefined,
    shiftedLayers: parent.uidBase !== undefined ? (parent.shiftedLayers ?? 0) + 1 : 0,
    namePrefix: `${parent.name}-clone`,
  }, count);
  if (started.length === 0) await Deno.remove(snapshot, { recursive: true }).catch(() => {});
  if (errors.length) {
    throw new TauError(`${errors.length} of ${count} clones failed to start`, {
      detail: String(errors[0]),
      hint: started.length ? `started: ${started.map((s) => s.id).join(", ")}` : errors[0].message,
    });
  }
  return started;
}
