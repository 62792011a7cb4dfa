/**
 * Deploy-time rewrite of every function module: complete metering (instrument.ts), a memory maximum, capped
 * tables, and a proof section that tells the runtime the module may run on the serving thread.
 *
 * Refused here, with a build error naming the function: threads (shared memory, atomic instructions: an atomic
 * wait blocks the thread that runs it for as long as the guest asks), wasm GC (its objects live outside
 * execution.memory and an array.new of any length is one instruction), exception handling (a guest that can catch
 * could swallow the metering trap), 64-bit and multiple memories (tau gives a function one wasm32 memory),
 * table.fill/copy/init (binaryen's JS API cannot reach their operands to meter them; no toolchain emits them for
 * ordinary code), and imports of anything but functions.
 */
import binaryen from "binaryen";
import { TauError } from "../errors.ts";
import type { ResetPlan } from "./instance_reset.ts";
import { instrument, UnmeteredInstruction } from "./instrument.ts";
import {
  FUEL_PER_TICK,
  METER_MODULE,
  METER_TICK,
  METERING_SECTION,
  METERING_VERSION,
  type MeteringProof,
} from "./meter.ts";
import type { FunctionLimits } from "./types.ts";
import { formatSize } from "../schema/units.ts";
import { TAUBYTE_CALLS, TAUBYTE_MODULE } from "./taubyte/mod.ts";
import { planReset, withDataImage } from "./prepare_reset.ts";
import { appendCustomSection, codeFacts, customSectionNames, memoryInfo, setMemoryMaximum } from "./wasm_binary.ts";

export { FUEL_PER_TICK, METER_MODULE, METER_TICK };
const PAGE = 65536;
const MiB = 1024 * 1024;
/**
 * Features tau runs: what V8 runs without flags, minus what cannot be bounded (see above). Binaryen emits newer
 * encodings (e.g. compact imports) when more are enabled.
 */
const F = binaryen.Features;
const RUNNABLE_FEATURES = F.MutableGlobals | F.NontrappingFPToInt | F.SIMD128 | F.BulkMemory | F.SignExt |
  F.TailCall | F.ReferenceTypes | F.Multivalue | F.RelaxedSIMD | F.ExtendedConst | F.BulkMemoryOpt |
  F.CallIndirectOverlong;

/** Table entries a module may have in all: growing a table costs ~45 ns per entry (measured), so 65536 is ~3 ms. */
export const MAX_TABLE_ENTRIES = 65536;
const MAX_TABLES = 8;

/**
 * What a module may cost on the serving thread outside its metered code; beyond any of these it is metered all the
 * same but runs only on executor Workers. Measured on this VM: V8 compiles a function lazily on its first call at
 * ~6.5 ms per MB of body; growing memory by more than ~64 MiB at once can set off a synchronous GC (20-30 ms seen at
 * 256 MiB); every instantiation copies the data segments (~0.6 ms per MiB into fresh pages).
 */
export const INLINE_LIMITS = { memoryBytes: 64 * MiB, functionBytes: 512 * 1024, dataBytes: 4 * MiB };

const THREADS_HINT = "build without threads (C: no -pthread or -matomics; Rust: no +atomics target feature)";

function checkMemory(wasm: Uint8Array, limits: FunctionLimits, name: string): number {
  // Whole pages, rounded up: "16MB" (decimal, 16,000,000 bytes) is 245 pages, never less than what was asked.
  const maxPages = Math.ceil(limits.memoryBytes / PAGE);
  const mem = memoryInfo(wasm);
  if (mem.imported) {
    throw new TauError(`function ${name} imports its memory; tau gives each function its own memory`, {
      hint: "build the module so it defines and exports its memory (AssemblyScript: drop --importMemory)",
    });
  }
  if (mem.count > 1) throw new TauError(`function ${name} defines ${mem.count} memories; tau supports one`);
  if (mem.shared) {
    throw new TauError(`function ${name} uses shared memory (threads); tau runs every function on one thread`, {
      hint: THREADS_HINT,
    });
  }
  if (mem.memory64) {
    throw new TauError(`function ${name} uses a 64-bit memory; tau runs wasm32 modules`, {
      hint: "build for wasm32 (not wasm64 / memory64)",
    });
  }
  if (maxPages < 1) {
    throw new TauError(`function ${name}: execution.memory ${formatSize(limits.memoryBytes)} is below one 64KB page`, {
      hint: "set execution.memory to at least 64KB",
    });
  }
  if (mem.count === 1 && mem.initialPages > maxPages) {
    throw new TauError(
      `function ${name} needs ${formatSize(mem.initialPages * PAGE)} initial memory, execution.memory is ${
        formatSize(limits.memoryBytes)
      }: raise it`,
      { hint: "raise execution.memory for this function, or make the module start with less memory" },
    );
  }
  return maxPages;
}

function checkImports(wasm: Uint8Array, name: string) {
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>));
  if (imports.some((i) => i.module === METER_MODULE) || customSectionNames(wasm).includes(METERING_SECTION)) {
    throw new TauError(`function ${name}: module is already prepared (it imports ${METER_MODULE})`);
  }
  const missing = imports.find((i) => i.module === TAUBYTE_MODULE && !TAUBYTE_CALLS.has(i.name));
  if (missing) {
    throw new TauError(`function ${name} calls ${TAUBYTE_MODULE}.${missing.name}, which tau does not provide yet`, {
      hint: "tau runs Taubyte's HTTP event calls today (docs/abi.md lists them); databases, storages and the " +
        "other capabilities come next",
    });
  }
  const other = imports.find((i) => i.kind !== "function" && i.kind !== "memory");
  if (other) {
    throw new TauError(
      `function ${name} imports ${other.kind} ${other.module}.${other.name}; tau provides functions only`,
      { hint: "build the module so it defines its own tables and globals" },
    );
  }
}

/** Every table gets a maximum, and the module at most MAX_TABLE_ENTRIES entries to start with. */
function capTables(mod: binaryen.Module, name: string) {
  const count = mod.getNumTables();
  if (count > MAX_TABLES) {
    throw new TauError(`function ${name} defines ${count} tables; tau supports up to ${MAX_TABLES}`);
  }
  let initial = 0;
  const Table = (binaryen as unknown as { Table: { setMax(t: number, max: number): void } }).Table;
  for (let i = 0; i < count; i++) {
    const table = mod.getTableByIndex(i);
    const info = binaryen.getTableInfo(table);
    initial += info.initial;
    if (info.max === undefined || info.max > MAX_TABLE_ENTRIES) {
      Table.setMax(table, Math.max(info.initial, MAX_TABLE_ENTRIES));
    }
  }
  if (initial > MAX_TABLE_ENTRIES) {
    throw new TauError(`function ${name} starts with ${initial} table entries; tau allows up to ${MAX_TABLE_ENTRIES}`);
  }
}

function unmetered(e: UnmeteredInstruction, name: string): TauError {
  if (e.feature === "threads") {
    return new TauError(`function ${name} uses threads (${e.instruction}); tau runs every function on one thread`, {
      hint: THREADS_HINT,
    });
  }
  if (e.feature === "exception handling") {
    return new TauError(`function ${name} uses wasm exception handling (${e.instruction}), which tau does not run`, {
      hint: "build without wasm exceptions (C/C++: no -fwasm-exceptions; Rust: panic=abort)",
    });
  }
  if (e.feature) {
    return new TauError(`function ${name} uses ${e.feature} (${e.instruction}), which tau does not run`, {
      hint: "its objects live outside execution.memory and cannot be bounded; build for linear memory " +
        "(AssemblyScript, C, Rust and TinyGo do by default)",
    });
  }
  return new TauError(`function ${name} uses ${e.instruction}, which tau cannot meter`, {
    hint: "build without it (compilers emit it only when asked to, e.g. through a __builtin)",
  });
}

/** Whether the prepared module may run on the serving thread (see INLINE_LIMITS), and how to reset an instance. */
function proof(prepared: Uint8Array, limits: FunctionLimits, reset: ResetPlan): MeteringProof {
  const facts = codeFacts(prepared);
  const over = (what: string, value: number, limit: number) =>
    `${what} ${formatSize(value)} is over ${formatSize(limit)}`;
  let why: string | undefined;
  if (limits.memoryBytes > INLINE_LIMITS.memoryBytes) {
    why = over("execution.memory", limits.memoryBytes, INLINE_LIMITS.memoryBytes);
  } else if (facts.largestFunctionBytes > INLINE_LIMITS.functionBytes) {
    why = over("largest function", facts.largestFunctionBytes, INLINE_LIMITS.functionBytes);
  } else if (facts.dataSectionBytes > INLINE_LIMITS.dataBytes) {
    why = over("data section", facts.dataSectionBytes, INLINE_LIMITS.dataBytes);
  }
  return why
    ? { version: METERING_VERSION, inline: false, why, reset }
    : { version: METERING_VERSION, inline: true, reset };
}

/**
 * Returns the module the runtime will run: metered, memory maximum = limits.memoryBytes (rounded up to 64 KiB
 * pages). Throws TauError for invalid wasm, refused features, imported or oversized memory, or a prepared module.
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
  checkImports(wasm, name);
  const maxPages = checkMemory(wasm, limits, name);
  const mod = binaryen.readBinary(wasm);
  try {
    capTables(mod, name);
    let kinds: Set<number>;
    try {
      kinds = instrument(mod);
    } catch (e) {
      if (e instanceof UnmeteredInstruction) throw unmetered(e, name);
      if (e instanceof RangeError) throw new TauError(`function ${name} nests its code too deeply to meter`);
      throw e;
    }
    const reset = planReset(mod, kinds);
    mod.setFeatures(RUNNABLE_FEATURES);
    if (!mod.validate()) {
      throw new TauError(
        `function ${name}: module uses a wasm feature tau does not run (threads, GC, exception handling, memory64)`,
        { hint: "build for plain wasm32 without threads or wasm exceptions" },
      );
    }
    const capped = setMemoryMaximum(mod.emitBinary(), maxPages);
    const section = new TextEncoder().encode(JSON.stringify(proof(capped, limits, withDataImage(reset, capped))));
    return appendCustomSection(capped, METERING_SECTION, section);
  } finally {
    mod.dispose();
  }
}
