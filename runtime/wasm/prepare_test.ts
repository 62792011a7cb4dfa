import { TauError } from "../errors.ts";
import { compileAssemblyScript } from "./compile_as.ts";
import { METER_MODULE, prepareModule } from "./prepare.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { RESET_VERSION } from "./instance_reset.ts";
import { readProof } from "./meter.ts";
import { fixtureWasm, wat } from "./test_support.ts";
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

Deno.test("prepareModule plans instance resets: mutable globals exported, data segments located, or why not", async () => {
  const planOf = async (text: string) => {
    const prepared = await prepareModule(wat(text), { timeoutMs: 100, memoryBytes: MB }, "fn");
    return readProof(new WebAssembly.Module(prepared as Uint8Array<ArrayBuffer>))!.reset!;
  };
  const plan = await planOf(`(module (memory (export "memory") 1)
    (global (mut i32) (i32.const 1)) (global i32 (i32.const 2)) (global (export "__tau_global_1") (mut i64) (i64.const 3))
    (data (i32.const 16) "ab") (data (i32.const 18) "cd") (data (i32.const 100) "e") (data "passive")
    (func (export "_start")))`);
  assertEquals(plan.version, RESET_VERSION);
  // two of the module's own, plus the metering's fuel; a name the module already exports is not reused
  assertEquals(plan.globals, ["__tau_global_0", "__tau_global_1_1", "__tau_global_2"]);
  assertEquals(plan.data, [[16, 4], [100, 1]]);
  const started = await planOf(`(module (memory 1) (func $s) (start $s) (global (mut i32) (i32.const 0)))`);
  assertEquals(started.globals?.length, 2);
  assertEquals(started.data, undefined); // a start function may write anywhere: the runtime saves the whole memory
  for (
    const [text, why] of [
      [`(module (table 1 funcref) (func (table.set (i32.const 0) (ref.null func))))`, "table.set"],
      [`(module (table 1 funcref) (func (drop (table.grow (ref.null func) (i32.const 1)))))`, "table.grow"],
      [`(module (memory 1) (data "x") (func (data.drop 0)))`, "data.drop"],
      [`(module (global $v (mut v128) (v128.const i64x2 0 0)))`, "is not a number"],
    ]
  ) assertStringIncludes((await planOf(text)).why!, why);
});
