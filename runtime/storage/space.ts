/**
 * Disk space guard. Every write into the content store first checks that it leaves a reserve free, so a push that
 * is too big fails its build with a clear message instead of filling the disk under Deno KV, git and the logs that
 * must still record the failure.
 */
import { statfs } from "node:fs/promises";
import { TauError } from "../errors.ts";

/** Kept free for the node's own bookkeeping (KV, job logs, git refs). */
export const DISK_RESERVE_BYTES = 8 << 20;

export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Number(s.bavail) * Number(s.bsize);
}

function mb(n: number): string {
  return `${(n / (1 << 20)).toFixed(1)} MB`;
}

export async function ensureSpace(dir: string, bytes: number, what: string): Promise<void> {
  const free = await freeBytes(dir);
  if (free - bytes < DISK_RESERVE_BYTES) {
    throw new TauError(`disk full: storing ${what} needs ${mb(bytes)}, ${mb(free)} free in ${dir}`, {
      status: 507,
      hint: "free disk space on the node (or shrink what you push), then push again",
    });
  }
}

/** Turn an ENOSPC from a write into the same clear error. */
export function rethrowDiskFull(
  err: unknown,
  dir: string,
  what: string,
  hint = "free disk space on the node, then push again",
): never {
  const code = (err as { code?: string })?.code;
  const message = String((err as Error)?.message ?? err);
  if (code === "ENOSPC" || /ENOSPC|No space left/i.test(message)) {
    throw new TauError(`disk full while storing ${what} in ${dir}`, { status: 507, hint, cause: err });
  }
  throw err;
}
