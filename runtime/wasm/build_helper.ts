/**
 * Module builds in the build helper process (runtime/helper, role `build`). AssemblyScript compiles and binaryen
 * rewrites take hundreds of milliseconds of synchronous CPU and ~275 MB; in the node they would stall every request
 * and keep that memory. Here they cannot, and a compiler crash (asc may exit on an internal error) ends only this
 * process.
 */
import type { BuildJob } from "./build_protocol.ts";

export async function handleBuild(job: BuildJob): Promise<Uint8Array> {
  if (job.op === "compile") {
    const { compileAssemblyScript } = await import("./compile_as.ts");
    return await compileAssemblyScript(job.files, job.entry, job.name);
  }
  const { prepareModule } = await import("./prepare.ts");
  return await prepareModule(job.wasm, job.limits, job.name);
}
