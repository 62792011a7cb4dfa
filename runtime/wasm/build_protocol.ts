/** What ModuleBuilder (the node) asks of the build helper process (build_helper.ts). */
import type { FunctionLimits } from "./types.ts";

export type BuildJob =
  | { op: "compile"; files: Record<string, string>; entry: string; name: string }
  | { op: "prepare"; wasm: Uint8Array; limits: FunctionLimits; name: string };
