/**
 * The single-binary build. Where a denort binary is available (DENORT_BIN), the test builds ./tau and runs it;
 * where it is not (this workplace cannot reach Deno's download servers), it checks the task fails with a clear
 * message and reports the build test as skipped, with the reason in its name.
 */
import { assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join, relative } from "node:path";
import { COMPILE_INCLUDES } from "../deploy/includes.ts";

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

Deno.test("every module tau loads by a computed URL is --included in the compiled binary", async () => {
  // deno compile follows literal imports only; a module named by `new URL("...", import.meta.url)` (a Worker, or an
  // import() kept out of the start-up graph on purpose, see main.ts) is missing from the binary unless included.
  const missing: string[] = [];
  const files = ["main.ts"];
  for (const dir of ["cli", "runtime", "services"]) {
    for await (const f of walkTs(join(root, dir))) files.push(relative(root, f));
  }
  for (const file of files.filter((f) => !f.endsWith("_test.ts"))) {
    const text = await Deno.readTextFile(join(root, file));
    for (const m of text.matchAll(/new URL\(\s*"(\.{1,2}\/[^"]+\.ts)",\s*import\.meta\.url\s*\)/g)) {
      const target = relative(root, join(root, file, "..", m[1]));
      if (target === "main.ts") continue; // the entry point itself (cli/login.ts names it for git)
      if (!COMPILE_INCLUDES.some((inc) => target === inc || target.startsWith(`${inc}/`))) {
        missing.push(`${file}: ${target}`);
      }
    }
  }
  assertEquals(missing, [], "add these to deploy/includes.ts");
});

async function* walkTs(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) yield* walkTs(path);
    else if (e.isFile && e.name.endsWith(".ts")) yield path;
  }
}
