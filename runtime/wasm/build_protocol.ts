/** Messages between ModuleBuilder (the node) and build_worker.ts. */
import type { FunctionLimits } from "./types.ts";

export type BuildRequest =
  | { id: number; op: "compile"; files: Record<string, string>; entry: string; name: string }
  | { id: number; op: "prepare"; wasm: Uint8Array; limits: FunctionLimits; name: string };

export type BuildReply =
  | { id: number; ok: true; bytes: Uint8Array }
  | { id: number; ok: false; error: { message: string; hint?: string; detail?: string } };
