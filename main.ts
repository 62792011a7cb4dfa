// The tau binary: `deno run -A main.ts <command>` or the compiled `./tau <command>`.
import { run } from "./cli/main.ts";

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
