/**
 * The child side of a helper process (`tau __helper <role>`, runtime/helper/process.ts): reads requests from stdin,
 * answers each on stdout, and exits when stdin closes (the node retired it, or the node itself is gone). Calls are
 * answered in order, one at a time: each is CPU-bound, so running two at once would only interleave them.
 * stdout carries frames only; anything the code prints goes to stderr, where the node keeps the last lines.
 */
import { TauError } from "../errors.ts";
import { encodeFrame, readFrames } from "../frames.ts";
import { type HelperReply, type HelperRequest, type HelperRole, MAX_HELPER_FRAME } from "./protocol.ts";

type Handler = (req: unknown) => Promise<unknown> | unknown;

/**
 * Each role's handler, imported only in the child that runs it. The specifiers are computed: deno loads whatever a
 * literal import() names before the program starts, so a parse helper would load the compiler's graph too (main.ts).
 */
const ROLES: Record<HelperRole, () => Promise<Handler>> = {
  build: async () =>
    ((await import(
      new URL("../wasm/build_helper.ts", import.meta.url).href
    )) as typeof import("../wasm/build_helper.ts")).handleBuild as Handler,
  parse: async () =>
    ((await import(
      new URL("../schema/parse_helper.ts", import.meta.url).href
    )) as typeof import("../schema/parse_helper.ts")).handleParse as Handler,
};

export async function runHelper(role: string | undefined): Promise<number> {
  const load = ROLES[role as HelperRole];
  if (!load) {
    console.error(`error: no helper named ${role}; this command is run by tau itself`);
    return 2;
  }
  console.log = console.error;
  console.info = console.error;
  const handle = await load();
  const out = Deno.stdout.writable.getWriter();
  for await (const frame of readFrames(Deno.stdin.readable, MAX_HELPER_FRAME)) {
    const { id, req } = frame as HelperRequest<unknown>;
    let reply: HelperReply<unknown>;
    try {
      reply = { id, ok: true, result: await handle(req) };
    } catch (err) {
      const e = err instanceof TauError ? err : new TauError(String((err as Error)?.message ?? err));
      reply = { id, ok: false, error: { message: e.message, hint: e.hint, detail: e.detail } };
    }
    await out.write(encodeFrame(reply));
  }
  return 0;
}
