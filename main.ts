// The tau binary: `deno run -A main.ts <command>` or the compiled `./tau <command>`.
// Both entries are imported on demand: a helper process (runtime/helper) loads only what its role needs, not the CLI.
import { HELPER_COMMAND } from "./runtime/helper/protocol.ts";

// The specifiers are computed on purpose: deno loads every module that a literal `import("...")` names before the
// program starts (a CLI call paid ~0.9 s of CPU for the whole node's graph), so a literal would defeat the point.
// deploy/compile.ts --includes these files for the compiled binary.
if (import.meta.main) {
  if (Deno.args[0] === HELPER_COMMAND) {
    const { runHelper } = await import(
      new URL("./runtime/helper/child.ts", import.meta.url).href
    ) as typeof import("./runtime/helper/child.ts");
    Deno.exit(await runHelper(Deno.args[1]));
  }
  const { run } = await import(new URL("./cli/main.ts", import.meta.url).href) as typeof import("./cli/main.ts");
  Deno.exit(await run(Deno.args));
}
