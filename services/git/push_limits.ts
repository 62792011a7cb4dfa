/**
 * What one push may carry, enforced by git itself where it can be, so that the git client prints the refusal:
 *
 * - Size: receive.maxInputSize (index-pack / unpack-objects stop reading past it); the node adds one `remote: tau:`
 *   line saying the limit and how to raise it. Default 256 MiB (`tau dev|serve --max-push-size`): a 100 MB push costs
 *   ~1 s of node CPU through the spool, and git's own index-pack needs ~4 s per 100 MB on this VM; GitHub's limit per
 *   file is 100 MB.
 * - Branches: a pre-receive hook (core.hooksPath, so every repo gets it, old ones too) refuses a push that creates or
 *   moves more than 32 branches. Each moved branch is a build; 3,000 in one push queued 3,000 builds. Refusing the
 *   whole push (rather than building the first 32) keeps the repo and the builds in step: nothing moved, nothing queued.
 */
import { join } from "node:path";
import { formatSize } from "../../runtime/schema/units.ts";

export const DEFAULT_MAX_PUSH_BYTES = 256_000_000;
export const MAX_PUSH_BRANCHES = 32;

const PRE_RECEIVE = `#!/bin/sh
# Written by tau (services/git/push_limits.ts): refuse a push that moves more than TAU_MAX_PUSH_BRANCHES branches.
n=0
while read old new ref; do
  case "$ref" in
    refs/heads/*) case "$new" in *[!0]*) n=$((n + 1)) ;; esac ;;
  esac
done
max=\${TAU_MAX_PUSH_BRANCHES:-${MAX_PUSH_BRANCHES}}
if [ "$n" -gt "$max" ]; then
  echo "tau: this push moves $n branches; a push may move at most $max (each branch is a build)" >&2
  echo "tau: nothing was changed: push fewer branches at a time (git push origin main, or a few branch names)" >&2
  exit 1
fi
exit 0
`;

/** Writes the hooks folder every repo uses (through core.hooksPath); returns its path. */
export async function writeHooks(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, "pre-receive");
  const tmp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(tmp, PRE_RECEIVE, { mode: 0o755 });
  await Deno.chmod(tmp, 0o755);
  await Deno.rename(tmp, path);
  return dir;
}

/**
 * Environment for `git http-backend`: command-line-level config (above anything in a repo's own config) read by the
 * receive-pack it runs.
 */
export function backendEnv(opts: { hooksDir: string; maxPushBytes: number }): Record<string, string> {
  return {
    GIT_CONFIG_COUNT: "2",
    GIT_CONFIG_KEY_0: "core.hooksPath",
    GIT_CONFIG_VALUE_0: opts.hooksDir,
    GIT_CONFIG_KEY_1: "receive.maxInputSize",
    GIT_CONFIG_VALUE_1: String(opts.maxPushBytes),
    TAU_MAX_PUSH_BRANCHES: String(MAX_PUSH_BRANCHES),
  };
}

export function tooLargeMessage(bytes: number, max: number): string {
  return `tau: this push is over ${formatSize(max)}, the most this node accepts in one push ` +
    `(${(bytes / 2 ** 20).toFixed(1)} MB or more sent); push smaller commits, or start the node with a larger ` +
    "--max-push-size";
}

/** Whether the push asked for side-band (its first command line lists capabilities after a NUL). */
export function usesSideBand(bodyHead: Uint8Array): boolean {
  if (bodyHead.length < 4) return false;
  const len = parseInt(new TextDecoder().decode(bodyHead.subarray(0, 4)), 16);
  if (!len || len < 4) return false;
  const line = new TextDecoder("latin1").decode(bodyHead.subarray(4, Math.min(len, bodyHead.length)));
  const caps = line.split("\0")[1] ?? "";
  return /(^| )side-band(-64k)?( |$)/.test(caps);
}

/** A side-band progress packet: the git client prints it as `remote: <text>`. */
export function sideBandMessage(text: string): Uint8Array {
  const payload = new TextEncoder().encode(`\x02${text}\n`);
  const out = new Uint8Array(4 + payload.length);
  out.set(new TextEncoder().encode((4 + payload.length).toString(16).padStart(4, "0")));
  out.set(payload, 4);
  return out;
}
