/**
 * Config parsing off the serving thread. The YAML parser runs at ~1-4 ms per KiB here (a 32 MB file blocked every
 * request for ~80 s when it ran inline), so a build hands its config tree to the parse helper process
 * (runtime/helper, role `parse`) and awaits the result. Size caps (limits.ts) bound the work; a parse that still runs
 * past PARSE_TIMEOUT_MS is stopped by killing the helper, and the next parse starts a fresh one. The helper starts
 * with the first parse and is retired when idle (runtime/idle_timer.ts).
 */
import { HelperProcess } from "../helper/process.ts";
import { workerIdleMs } from "../idle_timer.ts";
import type { ParseResult } from "./types.ts";

/** Far above what the size caps allow (2 MiB of YAML parses in well under 10 s), so only a parser bug hits it. */
export const PARSE_TIMEOUT_MS = 30_000;

export class ConfigParser {
  #helper: HelperProcess<Record<string, string>, ParseResult>;

  constructor(opts: { timeoutMs?: number; idleMs?: number } = {}) {
    const timeoutMs = opts.timeoutMs ?? PARSE_TIMEOUT_MS;
    this.#helper = new HelperProcess({
      role: "parse",
      what: "parsing the config",
      idleMs: opts.idleMs ?? workerIdleMs(),
      timeoutMs,
      hint: "make the config smaller or simpler, then push again",
    });
  }

  parse(files: Record<string, string>): Promise<ParseResult> {
    return this.#helper.call(files);
  }

  /** Whether the helper is loaded (or loading) now. */
  get loaded(): boolean {
    return this.#helper.loaded;
  }

  close(): void {
    this.#helper.close();
  }
}
