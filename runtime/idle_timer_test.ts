// The build and config-parse workers start on demand and are retired when idle; work after a retirement still runs.
import { assert, assertEquals } from "../tests/helpers/assert.ts";
import { ModuleBuilder } from "./wasm/builder.ts";
import { ConfigParser } from "./schema/off_thread.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await sleep(50);
  assert(check(), what);
}

Deno.test("the module builder loads on its first build, is retired when idle, and builds again after", async () => {
  const builder = new ModuleBuilder({ idleMs: 100 });
  try {
    assertEquals(builder.loaded, false, "nothing is loaded before the first build");
    const wasm = await builder.compileAssemblyScript(
      { "index.ts": "export function a(): i32 { return 1; }" },
      "index.ts",
      "a",
    );
    assert(WebAssembly.validate(wasm as Uint8Array<ArrayBuffer>));
    await waitUntil("the idle builder is retired", () => !builder.loaded);
    const again = await builder.compileAssemblyScript(
      { "index.ts": "export function b(): i32 { return 2; }" },
      "index.ts",
      "b",
    );
    assert(WebAssembly.validate(again as Uint8Array<ArrayBuffer>));
  } finally {
    builder.close();
  }
});

Deno.test("the config parser is retired when idle and parses again after", async () => {
  const parser = new ConfigParser({ idleMs: 50 });
  try {
    const first = await parser.parse({ "config.yaml": "id: a\nname: one\n" });
    await waitUntil("the idle parser is retired", () => !parser.loaded);
    const second = await parser.parse({ "config.yaml": "id: b\nname: two\n" });
    assertEquals([first.config?.name, second.config?.name], ["one", "two"]);
  } finally {
    parser.close();
  }
});
