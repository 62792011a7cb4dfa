// Helper processes: a crash or a timeout fails only the calls it had, a retired helper's process is gone, and the
// next call starts a fresh one.
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { HelperProcess } from "./process.ts";
import type { BuildJob } from "../wasm/build_protocol.ts";
import type { ParseResult } from "../schema/types.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const compile = (name: string): BuildJob => ({
  op: "compile",
  files: { "index.ts": `export function ${name}(): i32 { return 1; }` },
  entry: "index.ts",
  name,
});
const alive = async (pid: number) => await Deno.stat(`/proc/${pid}`).then(() => true, () => false);

Deno.test("a helper killed in the middle of a build fails that build with a clear error; the next build works", async () => {
  const helper = new HelperProcess<BuildJob, Uint8Array>({
    role: "build",
    what: "the wasm compiler",
    idleMs: 60_000,
    hint: "push again",
  });
  try {
    const first = helper.call(compile("a"));
    const pid = helper.pid!;
    Deno.kill(pid, "SIGKILL");
    await assertRejects(() => first, /^the wasm compiler crashed: it was killed by SIGKILL/);
    const wasm = await helper.call(compile("b"));
    assert(WebAssembly.validate(wasm as Uint8Array<ArrayBuffer>), "a fresh helper builds");
    assert(helper.pid !== pid);
  } finally {
    helper.close();
  }
});

Deno.test("a call past the helper's timeout kills it; a retired helper's process is gone", async () => {
  const slow = new HelperProcess<Record<string, string>, ParseResult>({
    role: "parse",
    what: "parsing the config",
    idleMs: 60_000,
    timeoutMs: 1, // far below a process start, so the first call always times out
    hint: "make the config smaller",
  });
  const call = slow.call({ "config.yaml": "id: a\nname: one\n" });
  const pid = slow.pid!;
  await assertRejects(() => call, /^parsing the config took longer than 0\.001 s$/);
  for (let i = 0; i < 100 && await alive(pid); i++) await sleep(20);
  assert(!(await alive(pid)), "the helper that ran past its timeout was killed");
  slow.close();

  const parser = new HelperProcess<Record<string, string>, ParseResult>({
    role: "parse",
    what: "parsing the config",
    idleMs: 50,
    hint: "make the config smaller",
  });
  try {
    const result = await parser.call({ "config.yaml": "id: a\nname: one\n" });
    assertEquals(result.config?.name, "one");
    const child = parser.pid!;
    for (let i = 0; i < 200 && (parser.loaded || await alive(child)); i++) await sleep(20);
    assert(!parser.loaded && !(await alive(child)), "the idle helper exited");
  } finally {
    parser.close();
  }
});
