/** One serving isolate of bench/cores_server.ts. */
import { FunctionRuntime } from "../runtime/wasm/mod.ts";

const self_ = self as unknown as Worker & { onmessage: (e: MessageEvent) => void };
self_.onmessage = (e: MessageEvent<{ bytes: Uint8Array; port: number }>) => {
  const { bytes, port } = e.data;
  const runtime = new FunctionRuntime({ load: () => Promise.resolve(bytes) });
  const target = { key: "hello", name: "hello", call: "hello", limits: { timeoutMs: 10_000, memoryBytes: 16 << 20 } };
  let n = 0;
  Deno.serve(
    { hostname: "127.0.0.1", port, reusePort: true, onListen: () => self_.postMessage("listening") },
    (req) => runtime.invoke(target, req, { params: {}, requestId: `r${n++}`, path: "/", query: "" }),
  );
};
// Asks for the module only once it can take it (a message sent while the worker still loads can be lost).
self_.postMessage("loaded");
