/**
 * The build side of the runtime, off the serving thread and out of the node's memory: the build helper process
 * (runtime/helper, role `build`) keeps the AssemblyScript compiler and binaryen loaded while builds come. It starts
 * with the first build that compiles or rewrites a module and is retired after a quiet spell (runtime/idle_timer.ts),
 * giving back all it held. If it dies, pending builds fail with a clear error and the next build starts a fresh one.
 */
import { HelperProcess } from "../helper/process.ts";
import { workerIdleMs } from "../idle_timer.ts";
import type { BuildJob } from "./build_protocol.ts";
import type { FunctionLimits } from "./types.ts";

export class ModuleBuilder {
  #helper: HelperProcess<BuildJob, Uint8Array>;

  constructor(opts: { idleMs?: number } = {}) {
    this.#helper = new HelperProcess({
      role: "build",
      what: "the wasm compiler",
      idleMs: opts.idleMs ?? workerIdleMs(),
      hint: "push again; if it keeps failing, run tau dev --verbose and report it",
    });
  }

  compileAssemblyScript(files: Record<string, string>, entry: string, name: string): Promise<Uint8Array> {
    return this.#helper.call({ op: "compile", files, entry, name });
  }

  prepareModule(wasm: Uint8Array, limits: FunctionLimits, name: string): Promise<Uint8Array> {
    return this.#helper.call({ op: "prepare", wasm, limits, name });
  }

  /** Whether the compiler is loaded (or loading) now. */
  get loaded(): boolean {
    return this.#helper.loaded;
  }

  close(): void {
    this.#helper.close();
  }
}
