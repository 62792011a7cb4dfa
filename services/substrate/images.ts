/** Which image a deployment runs: resolved at build time, and pinned by id in the deployment record. */
import { TauError } from "../../runtime/errors.ts";
import type { ContainerRuntime } from "../../runtime/container/runtime.ts";
import type { ImageRecord } from "../../runtime/container/images/store.ts";
import { pullImage } from "../../runtime/container/images/pull.ts";
import { registryHostOf } from "../../runtime/container/images/registry.ts";

/**
 * A reference that names a registry host (`127.0.0.1:5000/app:1`) is pulled when it is not here yet; a bare name
 * (`busybox`) must have been imported, so a build never reaches out to a registry the user did not name.
 */
export async function resolveOrPull(
  rt: ContainerRuntime,
  ref: string,
  log: (line: string) => void,
): Promise<ImageRecord> {
  try {
    return await rt.images.resolve(ref);
  } catch (err) {
    if (!(err instanceof TauError) || err.status !== 404 || !registryHostOf(ref)) throw err;
    log(`pulling ${ref}`);
    return await pullImage(rt.images, rt.helper, ref, { log });
  }
}
