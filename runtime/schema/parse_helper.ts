/** Config parsing in the parse helper process (runtime/helper, role `parse`; off_thread.ts says why). */
import { TauError } from "../errors.ts";
import { parseProjectConfig } from "./parse.ts";
import type { ParseResult } from "./types.ts";

export function handleParse(files: Record<string, string>): ParseResult {
  try {
    return parseProjectConfig(files);
  } catch (err) {
    throw new TauError(`cannot read the config: ${(err as Error).message ?? String(err)}`);
  }
}
