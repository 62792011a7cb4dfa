/**
 * Turning a function's code folder into a prepared wasm module: AssemblyScript compiled in-process, or a prebuilt
 * .wasm (C, Rust, TinyGo...) taken as is; both are then metered and memory-capped by prepareModule.
 * Results are cached by a hash of the folder's files and the limits, so a config-only push rebuilds nothing.
 */
import { concatBytes } from "../../runtime/bytes.ts";
import { TauError } from "../../runtime/errors.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import { formatDuration, formatSize, type FunctionResource } from "../../runtime/schema/mod.ts";
import type { ModuleBuilder } from "../../runtime/wasm/builder.ts";
import { RESET_VERSION } from "../../runtime/wasm/instance_reset.ts";
import { METERING_VERSION } from "../../runtime/wasm/meter.ts";

const BUILD_CACHE_VERSION = "1";

/**
 * What a node lets one function run with. The config asks without maxima (as Taubyte does: 1h15m, 64GB are valid
 * YAML); the build clamps a request above these to them and says so in its log, so the deployment records what runs.
 */
export const NODE_EXECUTION_LIMITS = { timeoutMs: 5 * 60_000, memoryBytes: 4 * 1024 ** 3 } as const;

/**
 * The function (or smartop: `kind`) with its execution limits clamped to NODE_EXECUTION_LIMITS; a warning per
 * clamped limit.
 */
export function withNodeLimits<T extends ModuleSource & { app?: string }>(
  fn: T,
  log: (line: string) => void,
  kind = "function",
): T {
  const { timeoutMs, memoryBytes } = fn.execution;
  const max = NODE_EXECUTION_LIMITS;
  if (timeoutMs <= max.timeoutMs && memoryBytes <= max.memoryBytes) return fn;
  const name = fn.app ? `${fn.app}/${fn.name}` : fn.name;
  if (timeoutMs > max.timeoutMs) {
    log(
      `warning: ${kind} ${name}: execution.timeout ${formatDuration(timeoutMs)} is above what this node allows; ` +
        `it runs with ${formatDuration(max.timeoutMs)}`,
    );
  }
  if (memoryBytes > max.memoryBytes) {
    log(
      `warning: ${kind} ${name}: execution.memory ${formatSize(memoryBytes)} is above what this node allows; ` +
        `it runs with ${formatSize(max.memoryBytes)}`,
    );
  }
  return {
    ...fn,
    execution: {
      ...fn.execution,
      timeoutMs: Math.min(timeoutMs, max.timeoutMs),
      memoryBytes: Math.min(memoryBytes, max.memoryBytes),
    },
  };
}

/** What building a module needs of its resource: a function or a smartop. */
export type ModuleSource = Pick<FunctionResource, "name"> & {
  execution: Pick<FunctionResource["execution"], "timeoutMs" | "memoryBytes">;
};

export async function buildFunctionModule(
  fn: ModuleSource,
  files: Record<string, Uint8Array>,
  folder: string,
  store: ContentStore,
  kv: Deno.Kv,
  builder: ModuleBuilder,
): Promise<{ cid: string; cached: boolean }> {
  if (Object.keys(files).length === 0) {
    throw new TauError(`function ${fn.name} has no code: expected ${folder}/ in the code repo`, {
      hint: `add ${folder}/index.ts (AssemblyScript) or a .wasm file, commit and push the code repo`,
    });
  }
  const limits = { timeoutMs: fn.execution.timeoutMs, memoryBytes: fn.execution.memoryBytes };
  // The metering version is in the key: a module prepared by an older metering runs only on executors, so the next
  // push must prepare it again even if its code did not change. So is the reset version: a WAGI module prepared
  // without a reset plan gets a fresh instance per request until it is prepared again.
  const key = await digest(
    files,
    `${BUILD_CACHE_VERSION}|${METERING_VERSION}|reset${RESET_VERSION}|${fn.name}|${limits.memoryBytes}`,
  );
  const hit = (await kv.get<string>(["monkey", "module", key])).value;
  if (hit && await store.has(hit)) return { cid: hit, cached: true };

  const wasmFiles = Object.keys(files).filter((p) => p.endsWith(".wasm") && !p.includes("/"));
  let wasm: Uint8Array;
  if (wasmFiles.length > 0) {
    const chosen = wasmFiles.length === 1
      ? wasmFiles[0]
      : wasmFiles.find((p) => p === `${fn.name}.wasm` || p === "main.wasm");
    if (!chosen) {
      throw new TauError(`function ${fn.name}: ${folder}/ holds several .wasm files (${wasmFiles.join(", ")})`, {
        hint: `keep one, or name the one to use ${fn.name}.wasm`,
      });
    }
    wasm = files[chosen];
  } else {
    const entry = ["index.ts", "assembly/index.ts"].find((p) => p in files);
    if (!entry) {
      throw new TauError(`function ${fn.name} has no entry point in ${folder}/`, {
        hint: "add index.ts (AssemblyScript) or a prebuilt .wasm file",
      });
    }
    const sources: Record<string, string> = {};
    const dec = new TextDecoder();
    for (const [path, bytes] of Object.entries(files)) if (path.endsWith(".ts")) sources[path] = dec.decode(bytes);
    wasm = await builder.compileAssemblyScript(sources, entry, fn.name);
  }
  const prepared = await builder.prepareModule(wasm, limits, fn.name);
  const cid = await store.addBytes(prepared);
  await kv.set(["monkey", "module", key], cid);
  return { cid, cached: false };
}

async function digest(files: Record<string, Uint8Array>, salt: string): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode(salt)];
  for (const path of Object.keys(files).sort()) {
    parts.push(enc.encode(`\0${path}\0${files[path].length}\0`), files[path]);
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", concatBytes(parts)));
  return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
}
