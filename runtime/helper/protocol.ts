/** What a node and its helper processes say to each other (runtime/helper/process.ts, child.ts). */

/** The hidden `tau` subcommand that runs a helper: `tau __helper <role>`. */
export const HELPER_COMMAND = "__helper";

/** The helpers there are; each names a module of runtime/helper/child.ts's table. */
export type HelperRole = "build" | "parse";

/** Far above any module or config a build sends (inputs are capped well below this). */
export const MAX_HELPER_FRAME = 256 << 20;

export interface HelperRequest<Req> {
  id: number;
  req: Req;
}

export type HelperReply<Res> =
  | { id: number; ok: true; result: Res }
  | { id: number; ok: false; error: { message: string; hint?: string; detail?: string } };
