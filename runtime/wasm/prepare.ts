/**
 * Deploy-time rewrite of every function module: metering for interruptible execution, and a memory maximum.
 *
 * Metering: binaryen's `log-execution` pass puts a call to an `env.log_execution(i32)` import at every function
 * entry and loop head. Calling out to JS that often would cost more than the guest's own work in a tight loop,
 * so the import is replaced by a small wasm function that decrements a fuel global and only calls the host's
 * `tau_meter.tick` when the fuel runs out (every FUEL_PER_TICK metering points). The host compares the clock with
 * the call's deadline there and throws to abort the guest.
 */
import binaryen from "binaryen";
import { TauError } from "../errors.ts";
import type { FunctionLimits } from "./types.ts";
import { memoryInfo, setMemoryMaximum } from "./wasm_binary.ts";

import { FUEL_PER_TICK, METER_MODULE, METER_TICK } from "./meter.ts";
export { FUEL_PER_TICK, METER_MODULE, METER_TICK };
const PAGE = 65536;
/**
 * Features V8 runs without flags. Binaryen emits newer encodings (e.g. compact imports) when more are enabled.
 * Exception handling is left out on purpose: a guest that can catch would swallow the metering trap.
 */
const F = binaryen.Features;
const RUNNABLE_FEATURES = F.Atomics | F.MutableGlobals | F.NontrappingFPToInt | F.SIMD128 | F.BulkMemory | F.SignExt |
  F.TailCall | F.ReferenceTypes | F.Multivalue | F.GC | F.Memory64 | F.RelaxedSIMD | F.ExtendedConst | F.MultiMemory |
  F.BulkMemoryOpt | F.CallIndirectOverlong;
const FUEL_GLOBAL = "__tau_fuel";
const HOST_TICK = "__tau_meter_tick";

function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)}MB`;
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)}MB`;
  return `${Math.ceil(n / 1024)}KB`;
}

function checkMemory(wasm: Uint8Array, limits: FunctionLimits, name: string): number {
  const maxPages = Math.floor(limits.memoryBytes / PAGE);
  const mem = memoryInfo(wasm);
  if (mem.imported) {
    throw new TauError(`function ${name} imports its memory; tau gives each function its own memory`, {
      hint: "build the module so it defines and exports its memory (AssemblyScript: drop --importMemory)",
    });
  }
  if (mem.count > 1) throw new TauError(`function ${name} defines ${mem.count} memories; tau supports one`);
  if (maxPages < 1) {
    throw new TauError(`function ${name}: execution.memory ${formatBytes(limits.memoryBytes)} is below one 64KB page`, {
      hint: "set execution.memory to at least 64KB",
    });
  }
  if (mem.count === 1 && mem.initialPages > maxPages) {
    throw new TauError(
      `function ${name} needs ${formatBytes(mem.initialPages * PAGE)} initial memory, execution.memory is ${
        formatBytes(limits.memoryBytes)
      }: raise it`,
      { hint: "raise execution.memory for this function, or make the module start with less memory" },
    );
  }
  return maxPages;
}

function findLogExecutionImport(mod: binaryen.Module): binaryen.FunctionInfo | undefined {
  for (let i = 0; i < mod.getNumFunctions(); i++) {
    const info = binaryen.getFunctionInfo(mod.getFunctionByIndex(i));
    // The pass names its import's module after the module's existing imports (e.g. wasi_snapshot_preview1).
    if (info.module !== null && info.base === "log_execution") return info;
  }
  return undefined;
}

function addFuelCounter(mod: binaryen.Module, logImport: binaryen.FunctionInfo) {
  // The pass's calls target the import by internal name: replacing it by a defined function of the same name
  // redirects every call site to the fuel counter.
  mod.removeFunction(logImport.name);
  mod.addFunctionImport(HOST_TICK, METER_MODULE, METER_TICK, binaryen.none, binaryen.none);
  mod.addGlobal(FUEL_GLOBAL, binaryen.i32, true, mod.i32.const(FUEL_PER_TICK));
  const fuel = () => mod.global.get(FUEL_GLOBAL, binaryen.i32);
  mod.addFunction(
    logImport.name,
    binaryen.createType([binaryen.i32]),
    binaryen.none,
    [],
    mod.block(null, [
      mod.global.set(FUEL_GLOBAL, mod.i32.sub(fuel(), mod.i32.const(1))),
      mod.if(
        mod.i32.le_s(fuel(), mod.i32.const(0)),
        mod.block(null, [
          mod.global.set(FUEL_GLOBAL, mod.i32.const(FUEL_PER_TICK)),
          mod.call(HOST_TICK, [], binaryen.none),
        ]),
      ),
    ]),
  );
}

/**
 * Returns the module the runtime will run: metered, memory maximum = limits.memoryBytes (rounded down to 64 KiB
 * pages). Throws TauError for invalid wasm, imported or oversized memory, or an already prepared module.
 */
export function prepareModule(wasm: Uint8Array, limits: FunctionLimits, name: string): Promise<Uint8Array> {
  return Promise.resolve().then(() => prepareSync(wasm, limits, name));
}

function prepareSync(input: Uint8Array, limits: FunctionLimits, name: string): Uint8Array {
  const wasm = input as Uint8Array<ArrayBuffer>;
  // Validate with V8 first: binaryen aborts hard on some malformed inputs.
  if (!WebAssembly.validate(wasm)) {
    let why = "not a WebAssembly module";
    try {
      new WebAssembly.Module(wasm);
    } catch (e) {
      why = (e as Error).message.replace(/^WebAssembly\.Module\(\): /, "");
    }
    throw new TauError(`function ${name}: invalid WebAssembly module (${why})`, {
      hint: "check that the function's .wasm file is a complete wasm32 module",
    });
  }
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(wasm));
  if (imports.some((i) => i.module === METER_MODULE)) {
    throw new TauError(`function ${name}: module is already prepared (it imports ${METER_MODULE})`);
  }
  if (imports.some((i) => i.name === "log_execution")) {
    throw new TauError(`function ${name}: module imports a function named log_execution, a name tau reserves`);
  }
  const maxPages = checkMemory(wasm, limits, name);
  const mod = binaryen.readBinary(wasm);
  try {
    mod.setFeatures(RUNNABLE_FEATURES);
    if (!mod.validate()) {
      throw new TauError(`function ${name}: module uses a wasm feature tau does not run (e.g. exception handling)`, {
        hint: "build without wasm exceptions (C/C++: no -fwasm-exceptions; Rust: panic=abort)",
      });
    }
    mod.runPasses(["log-execution"]);
    const logImport = findLogExecutionImport(mod);
    if (logImport) addFuelCounter(mod, logImport);
    if (!mod.validate()) throw new TauError(`function ${name}: metering produced an invalid module (tau bug)`);
    const out = mod.emitBinary();
    return setMemoryMaximum(out, maxPages);
  } finally {
    mod.dispose();
  }
}
