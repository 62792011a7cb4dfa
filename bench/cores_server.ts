/**
 * The serving-isolates prototype measured by bench/cores_bench.ts: `K` Workers, each its own isolate with its own
 * FunctionRuntime and a Deno.serve on the same port (SO_REUSEPORT: the kernel spreads connections over them),
 * answering an SDK hello function. Prints "ready" once every worker listens.
 * deno run -A --unstable-net bench/cores_server.ts <workers> <port>
 */
import { compileAssemblyScript, prepareModule } from "../runtime/wasm/mod.ts";

const HELLO = `import { Response } from "tau-sdk";\nexport function hello(): void {\n` +
  `  new Response().header("content-type", "text/plain").send("hello");\n}\n`;

if (import.meta.main) {
  const workers = Number(Deno.args[0] ?? 1);
  const port = Number(Deno.args[1] ?? 18320);
  const bytes = await prepareModule(
    await compileAssemblyScript({ "index.ts": HELLO }, "index.ts", "hello"),
    { timeoutMs: 10_000, memoryBytes: 16 << 20 },
    "hello",
  );
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    const w = new Worker(new URL("./cores_worker.ts", import.meta.url).href, { type: "module" });
    w.onmessage = (e) => {
      if (e.data === "loaded") w.postMessage({ bytes, port });
      else if (++ready === workers) console.log("ready");
    };
  }
}
