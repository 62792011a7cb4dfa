/**
 * Worker entry for module builds. AssemblyScript compiles and binaryen rewrites take hundreds of milliseconds of
 * synchronous CPU; on the serving thread they would stall every request for that long. Here they cannot, and a
 * compiler crash (asc may exit the process on an internal error) ends only this worker.
 */
import { TauError } from "../errors.ts";
import type { BuildReply, BuildRequest } from "./build_protocol.ts";

// The compiler and binaryen are imported lazily, inside the handler: binaryen's module evaluates with a top-level
// await, and a message that arrives while the worker's own module is still evaluating is dropped.
const compiler = () => import("./compile_as.ts");
const rewriter = () => import("./prepare.ts");

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<BuildRequest>) => void) | null;
  postMessage(m: BuildReply, transfer?: Transferable[]): void;
};

scope.onmessage = async (e) => {
  const req = e.data;
  try {
    const bytes = req.op === "compile"
      ? await (await compiler()).compileAssemblyScript(req.files, req.entry, req.name)
      : await (await rewriter()).prepareModule(req.wasm, req.limits, req.name);
    const out = bytes.slice();
    scope.postMessage({ id: req.id, ok: true, bytes: out }, [out.buffer]);
  } catch (err) {
    const e = err instanceof TauError ? err : new TauError(String((err as Error)?.message ?? err));
    scope.postMessage({ id: req.id, ok: false, error: { message: e.message, hint: e.hint, detail: e.detail } });
  }
};
