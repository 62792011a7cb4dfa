/**
 * One error type for everything a user can do wrong. The CLI prints `message` (what, where) and `hint`
 * (what to do) on one line each; `detail` (stack, tool output) appears only with --verbose.
 * HTTP services send the same three fields as JSON so the CLI can print a remote error as if it were local.
 */
export class TauError extends Error {
  readonly hint?: string;
  readonly detail?: string;
  readonly status: number;
  constructor(message: string, opts: { hint?: string; detail?: string; status?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = "TauError";
    this.hint = opts.hint;
    this.detail = opts.detail;
    this.status = opts.status ?? 400;
  }
  toJSON() {
    return { error: this.message, hint: this.hint, detail: this.detail };
  }
}

/** One line for the user; detail only when verbose. */
export function formatError(err: unknown, verbose = false): string {
  if (err instanceof TauError) {
    let out = `error: ${err.message}`;
    if (err.hint) out += `\n  hint: ${err.hint}`;
    if (verbose && err.detail) out += `\n${err.detail}`;
    if (verbose && err.stack) out += `\n${err.stack}`;
    return out;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  let out = `error: ${e.message.split("\n")[0]}`;
  if (verbose) out += `\n${e.stack ?? e.message}`;
  else out += "\n  hint: run again with --verbose for details";
  return out;
}
