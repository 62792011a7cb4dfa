import { TauError } from "../errors.ts";
import { compileAssemblyScript } from "./compile_as.ts";
import { METER_MODULE, prepareModule } from "./prepare.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { fixtureWasm } from "./test_support.ts";
import { memoryInfo } from "./wasm_binary.ts";

const MB = 1024 * 1024;

Deno.test("prepareModule meters the module and caps its memory", async () => {
  const prepared = await prepareModule(await fixtureWasm("hello"), { timeoutMs: 100, memoryBytes: 3 * MB }, "hello");
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(prepared as Uint8Array<ArrayBuffer>));
  assert(imports.some((i) => i.module === METER_MODULE && i.name === "tick"));
  assertEquals(memoryInfo(prepared).maximumPages, 48);
  await assertRejects(() => prepareModule(prepared, { timeoutMs: 100, memoryBytes: 3 * MB }, "hello"), (e) => {
    assert(e instanceof TauError);
    assertStringIncludes(e.message, "already prepared");
  });
});

Deno.test("prepareModule rejects invalid wasm with a TauError", async () => {
  await assertRejects(
    () => prepareModule(new Uint8Array([0, 97, 115, 109, 9, 9]), { timeoutMs: 1, memoryBytes: MB }, "ping"),
    (e) => {
      assert(e instanceof TauError);
      assertStringIncludes(e.message, "function ping: invalid WebAssembly module");
    },
  );
});

Deno.test("prepareModule refuses a module whose initial memory exceeds execution.memory", async () => {
  const wasm = await fixtureWasm("hello");
  const initialKb = memoryInfo(wasm).initialPages * 64;
  await assertRejects(() => prepareModule(wasm, { timeoutMs: 1, memoryBytes: 64 * 1024 }, "ping"), (e) => {
    assert(e instanceof TauError);
    assertStringIncludes(
      e.message,
      `function ping needs ${initialKb}KiB initial memory, execution.memory is 64KiB: raise it`,
    );
  });
});

Deno.test("compileAssemblyScript reports the first diagnostic with file:line:col", async () => {
  const src = "export function ping(): void {\n  nope();\n}\n";
  await assertRejects(() => compileAssemblyScript({ "index.ts": src }, "index.ts", "ping"), (e) => {
    assert(e instanceof TauError);
    assertStringIncludes(e.message, "function ping does not compile: index.ts:2:3 error");
    assertStringIncludes(e.message, "nope");
    assert(e.detail && e.detail.includes("index.ts:2:3"));
  });
});
