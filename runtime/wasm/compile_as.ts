/**
 * Compiles an AssemblyScript function in-process. The compiler module is loaded once and kept (the first load
 * takes most of a second; later compiles only pay for the compile). `import ... from "tau-sdk"` resolves to
 * sdk/assemblyscript: asc looks packages up as node_modules/<pkg>/<file>.ts through our readFile callback.
 */
import { TauError } from "../errors.ts";

const SDK_PACKAGE = "tau-sdk";
const SDK_DIR = new URL("../../sdk/assemblyscript/", import.meta.url);
const OUT_FILE = "out.wasm";
const CATEGORY_ERROR = 3;

type Asc = typeof import("assemblyscript/asc");
let ascLoading: Promise<Asc> | undefined;
let sdkFiles: Promise<Map<string, string>> | undefined;
/** Compiles run one at a time: the compiler and binaryen keep process-global state. */
let queue: Promise<unknown> = Promise.resolve();

function loadAsc(): Promise<Asc> {
  ascLoading ??= import("assemblyscript/asc");
  return ascLoading;
}

async function loadSdk(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const e of Deno.readDir(SDK_DIR)) {
    if (e.isFile && e.name.endsWith(".ts")) files.set(e.name, await Deno.readTextFile(new URL(e.name, SDK_DIR)));
  }
  return files;
}

function normalize(path: string): string {
  const parts: string[] = [];
  for (const p of path.replaceAll("\\", "/").split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return parts.join("/");
}

interface Diagnostic {
  message: string;
  code: number;
  category: number;
  range: { start: number; source: { normalizedPath: string } | null } | null;
}

function lineCol(text: string | undefined, offset: number): string {
  if (text === undefined) return "";
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `:${line}:${offset - lineStart + 1}`;
}

/** Returns the raw (unprepared) module; the build passes it to prepareModule. */
export function compileAssemblyScript(
  files: Record<string, string>,
  entry: string,
  name: string,
): Promise<Uint8Array> {
  const run = queue.then(() => compile(files, entry, name));
  queue = run.catch(() => {});
  return run;
}

async function compile(files: Record<string, string>, entry: string, name: string): Promise<Uint8Array> {
  const asc = await loadAsc();
  sdkFiles ??= loadSdk();
  const sdk = await sdkFiles;
  const sources = new Map(Object.entries(files).map(([p, text]) => [normalize(p), text]));
  const sdkPrefix = `node_modules/${SDK_PACKAGE}/`;
  const sourceOf = (path: string): string | undefined => {
    const p = normalize(path);
    if (p.startsWith(sdkPrefix)) return sdk.get(p.slice(sdkPrefix.length));
    if (p.startsWith(`~lib/${SDK_PACKAGE}/`)) return sdk.get(p.slice(`~lib/${SDK_PACKAGE}/`.length));
    return sources.get(p);
  };
  if (!sources.has(normalize(entry))) {
    throw new TauError(`function ${name}: entry file ${entry} not found`, { hint: "check the function's source path" });
  }

  let wasm: Uint8Array | undefined;
  const diagnostics: string[] = [];
  let firstError: string | undefined;
  const stderr = asc.createMemoryStream();
  const result = await asc.main([normalize(entry), "--outFile", OUT_FILE, "-O3", "--noColors"], {
    readFile: (file: string) => sourceOf(file) ?? null,
    writeFile: (file: string, contents: Uint8Array | string) => {
      if (file === OUT_FILE && contents instanceof Uint8Array) wasm = contents;
    },
    listFiles: () => [],
    stdout: asc.createMemoryStream(),
    stderr,
    reportDiagnostic: (d: Diagnostic) => {
      const path = d.range?.source?.normalizedPath;
      const where = path ? `${path}${lineCol(sourceOf(path), d.range!.start)} ` : "";
      const kind = d.category === CATEGORY_ERROR ? "error" : "warning";
      const line = `${where}${kind} AS${d.code}: ${d.message}`;
      diagnostics.push(line);
      if (d.category === CATEGORY_ERROR) firstError ??= line;
    },
  });
  if (result.error || !wasm) {
    const detail = [...diagnostics, stderr.toString().trim()].filter((s) => s).join("\n");
    const first = firstError ?? result.error?.message ?? "no output";
    throw new TauError(`function ${name} does not compile: ${first}`, {
      hint: "fix the error in the function's source and push again",
      detail,
    });
  }
  return wasm;
}
