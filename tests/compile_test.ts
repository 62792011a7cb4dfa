/**
 * The single-binary build. Where a denort binary is available (DENORT_BIN), the test builds ./tau and runs it;
 * where it is not (this workplace cannot reach Deno's download servers), it checks the task fails with a clear
 * message and reports the build test as skipped, with the reason in its name.
 */
import { assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const denort = Deno.env.get("DENORT_BIN");

Deno.test("deno task compile without denort fails with one clear line and a hint", async () => {
  const env = { ...Deno.env.toObject() };
  delete env.DENORT_BIN;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(root, "deploy/compile.ts")],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 2);
  assertStringIncludes(stderr, "needs the denort runtime binary");
  assertStringIncludes(stderr, "DENORT_BIN");
});

Deno.test({
  name: denort
    ? "deno task compile builds a tau binary that runs"
    : "deno task compile builds a tau binary (SKIPPED: DENORT_BIN is not set and Deno's download servers are unreachable)",
  ignore: !denort,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const bin = join(dir, "tau");
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(root, "deploy/compile.ts"), `--output=${bin}`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      const help = await new Deno.Command(bin, { args: ["--help"], stdout: "piped" }).output();
      assertStringIncludes(new TextDecoder().decode(help.stdout), "git-native");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
