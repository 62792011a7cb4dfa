/** Shared helpers for the runtime's unit tests: compile + prepare a function, collect logs, build targets. */
import { compileAssemblyScript } from "./compile_as.ts";
import { prepareModule } from "./prepare.ts";
import { FunctionRuntime } from "./runtime.ts";
import type { FunctionLimits, FunctionLogLine, FunctionTarget } from "./types.ts";
import type { CallInput } from "./outcome.ts";

export { wat } from "../../tests/helpers/wat.ts";

export const FIXTURES = new URL("../../tests/fixtures/wagi/", import.meta.url);

export async function fixtureWasm(name: string): Promise<Uint8Array> {
  return await Deno.readFile(new URL(`${name}.wasm`, FIXTURES));
}

/** An in-memory module store standing in for Helia, plus a runtime wired to it and a log collector. */
export class Harness {
  readonly modules = new Map<string, Uint8Array>();
  readonly logs: FunctionLogLine[] = [];
  readonly runtime: FunctionRuntime;
  private counter = 0;

  constructor(
    opts: {
      inlineBudgetMs?: number;
      executors?: number;
      executorsPerProject?: number;
    } = {},
  ) {
    this.runtime = new FunctionRuntime({
      load: (key) => {
        const bytes = this.modules.get(key);
        return bytes ? Promise.resolve(bytes) : Promise.reject(new Error(`no module ${key}`));
      },
      onLog: (line) => this.logs.push(line),
      ...opts,
    });
  }

  async addWasm(name: string, wasm: Uint8Array, limits: FunctionLimits, call?: string): Promise<FunctionTarget> {
    const prepared = await prepareModule(wasm, limits, name);
    const key = `test-${name}-${++this.counter}`;
    this.modules.set(key, prepared);
    return { key, name, call, limits };
  }

  async addAssemblyScript(name: string, source: string, limits: FunctionLimits): Promise<FunctionTarget> {
    const wasm = await compileAssemblyScript({ "index.ts": source }, "index.ts", name);
    return this.addWasm(name, wasm, limits, name);
  }

  async invoke(
    target: FunctionTarget,
    req: Request | string,
    params: Record<string, string> = {},
    requestId = "req-1",
  ): Promise<Response> {
    const request = typeof req === "string" ? new Request(`http://fn.test${req}`) : req;
    return await this.runtime.invoke(target, request, { params, requestId });
  }

  logsOf(requestId: string): FunctionLogLine[] {
    return this.logs.filter((l) => l.requestId === requestId);
  }
}

export const LIMITS: FunctionLimits = { timeoutMs: 300, memoryBytes: 2 * 1024 * 1024 };

/** A bare call input for tests that run the engine or the executor pool without an HTTP request. */
export function callInput(method = "GET"): CallInput {
  return { method, path: "/", query: "", headers: new Headers(), body: null, params: {}, requestId: "r" };
}
