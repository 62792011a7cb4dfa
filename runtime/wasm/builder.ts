/**
 * The build side of the runtime, off the serving thread: one Worker that keeps the AssemblyScript compiler and
 * binaryen loaded while builds come: started by the first build that compiles or rewrites a module, retired after a
 * quiet spell (runtime/idle_timer.ts: it holds ~275 MB). If the worker dies, pending builds fail with a clear error
 * and the next build starts a fresh worker.
 */
import { TauError } from "../errors.ts";
import { IdleTimer, workerIdleMs } from "../idle_timer.ts";
import type { BuildReply, BuildRequest } from "./build_protocol.ts";
import type { FunctionLimits } from "./types.ts";

type Pending = { resolve: (b: Uint8Array) => void; reject: (e: Error) => void };
type Job = { op: "compile"; files: Record<string, string>; entry: string; name: string } | {
  op: "prepare";
  wasm: Uint8Array;
  limits: FunctionLimits;
  name: string;
};

export class ModuleBuilder {
  #worker?: Worker;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #idle: IdleTimer;

  constructor(opts: { idleMs?: number } = {}) {
    this.#idle = new IdleTimer(opts.idleMs ?? workerIdleMs(), () => {
      if (this.#pending.size > 0) return;
      this.#worker?.terminate();
      this.#worker = undefined;
    });
  }

  compileAssemblyScript(files: Record<string, string>, entry: string, name: string): Promise<Uint8Array> {
    return this.#run({ op: "compile", files, entry, name });
  }

  prepareModule(wasm: Uint8Array, limits: FunctionLimits, name: string): Promise<Uint8Array> {
    return this.#run({ op: "prepare", wasm, limits, name });
  }

  /** Whether the compiler is loaded (or loading) now. */
  get loaded(): boolean {
    return this.#worker !== undefined;
  }

  close(): void {
    this.#idle.stop();
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#failAll("the node is shutting down");
  }

  #run(job: Job): Promise<Uint8Array> {
    const worker = this.#ensureWorker();
    this.#idle.busy();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ ...job, id } as BuildRequest);
    });
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL("./build_worker.ts", import.meta.url).href, { type: "module" });
    worker.onmessage = (e: MessageEvent<BuildReply>) => {
      const reply = e.data;
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) this.#idle.idle();
      if (reply.ok) p.resolve(reply.bytes);
      else p.reject(new TauError(reply.error.message, { hint: reply.error.hint, detail: reply.error.detail }));
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      if (this.#worker === worker) this.#worker = undefined;
      worker.terminate();
      this.#failAll(`the wasm compiler crashed: ${e.message}`);
    };
    this.#worker = worker;
    return worker;
  }

  #failAll(message: string) {
    for (const p of this.#pending.values()) {
      p.reject(new TauError(message, { hint: "push again; if it keeps failing, run tau dev --verbose and report it" }));
    }
    this.#pending.clear();
  }
}
