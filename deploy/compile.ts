/**
 * `deno task compile`: one self-contained `tau` binary (`./tau serve` on bare metal).
 * `deno compile` needs Deno's `denort` runtime binary. Where Deno's download servers are reachable it fetches it
 * itself (pass --download to allow that); otherwise point DENORT_BIN at a denort of the same Deno version.
 * Without either we stop with a clear message instead of letting deno try a download that cannot work.
 */
import { join } from "node:path";
import { buildPrebuiltHelper } from "../runtime/container/helper_build.ts";
import { NODE_V8_FLAGS_ARG } from "../runtime/wasm/v8_flags.ts";
import { COMPILE_INCLUDES } from "./includes.ts";

const root = new URL("..", import.meta.url).pathname;
const allowDownload = Deno.args.includes("--download");
const output = Deno.args.find((a) => a.startsWith("--output="))?.slice(9) ?? join(root, "tau");

const denort = Deno.env.get("DENORT_BIN");
if (!denort && !allowDownload) {
  console.error(
    "error: deno compile needs the denort runtime binary, and none is available\n" +
      "  hint: set DENORT_BIN=/path/to/denort (same Deno version: " + Deno.version.deno + "), " +
      "or run `deno task compile --download` where Deno's download servers are reachable",
  );
  Deno.exit(2);
}
if (denort) {
  try {
    await Deno.stat(denort);
  } catch {
    console.error(`error: DENORT_BIN=${denort} does not exist\n  hint: point it at a denort binary`);
    Deno.exit(2);
  }
}

// The container helper, compiled now (static) and embedded; the binary unpacks it on first use. A machine without a
// C compiler can still build tau: the binary then compiles the helper on first use where one exists.
try {
  console.log(`container helper: ${await buildPrebuiltHelper()}`);
} catch (err) {
  console.error(`warning: the container helper was not prebuilt (${(err as Error).message}); containers will need cc`);
}

// Helia's core class, which runtime/storage/helia_core.ts imports by file (a computed specifier deno cannot follow).
const heliaCore = new URL("./helia.js", import.meta.resolve("helia")).pathname;
const args = [
  "compile",
  "-A",
  NODE_V8_FLAGS_ARG,
  "--output",
  output,
  ...COMPILE_INCLUDES.flatMap((p) => ["--include", join(root, p)]),
  "--include",
  heliaCore,
  join(root, "main.ts"),
];
console.log(`deno ${args.join(" ")}`);
const status = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "inherit" }).spawn().status;
if (!status.success) Deno.exit(status.code);
console.log(`built ${output}: run ./tau serve`);
