// The tau binary: `deno run -A main.ts <command>` or the compiled `./tau <command>`.
// Both entries are imported on demand: a helper process (runtime/helper) loads only what its role needs, not the CLI.
import { HELPER_COMMAND } from "./runtime/helper/protocol.ts";

if (import.meta.main) {
  if (Deno.args[0] === HELPER_COMMAND) {
    const { runHelper } = await import("./runtime/helper/child.ts");
    Deno.exit(await runHelper(Deno.args[1]));
  }
  const { run } = await import("./cli/main.ts");
  Deno.exit(await run(Deno.args));
}
