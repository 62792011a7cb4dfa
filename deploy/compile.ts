/**
 * `deno task compile`: one self-contained `tau` binary (`./tau serve` on bare metal).
 * `deno compile` needs Deno's `denort` runtime binary. Where Deno's download servers are reachable it fetches it
 * itself (pass --download to allow that); otherwise point DENORT_BIN at a denort of the same Deno version.
 * Without either we stop with a clear message instead of letting deno try a download that cannot work.
 */
import { join } from "node:path";

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

// Files read at run time from next to the source: the AssemblyScript SDK (compiled into user functions) and the
// container helper's C source (built on first use).
const include = ["sdk/assemblyscript", "runtime/container/helper", "runtime/wasm/executor_worker.ts"];
const args = [
  "compile",
  "-A",
  "--output",
  output,
  ...include.flatMap((p) => ["--include", join(root, p)]),
  join(root, "main.ts"),
];
console.log(`deno ${args.join(" ")}`);
const status = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "inherit" }).spawn().status;
if (!status.success) Deno.exit(status.code);
console.log(`built ${output}: run ./tau serve`);
