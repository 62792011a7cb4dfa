/**
 * Hoarder's settings: an optional `hoarder:` map in the node's shape config (`<root>/config/<shape>.yaml`),
 *   hoarder:
 *     copies: 3            # nodes that keep each CID (all hoarder nodes when fewer)
 *     grace: 60s           # how long a node may be away before its CIDs are copied elsewhere
 *     keep: 5              # deployments of each branch's history kept besides the current one
 *     publish-timeout: 60s # how long a publish waits for its first copies before the build fails
 * Every node of a cloud should use the same values: placement is computed on every node and agrees only then.
 */
import { TauError } from "../../runtime/errors.ts";
import { parseYaml } from "../../runtime/schema/yaml_source.ts";
import { parseDuration } from "../../runtime/schema/units.ts";

export interface HoarderSettings {
  copies: number;
  graceMs: number;
  keep: number;
  publishTimeoutMs: number;
}

export const DEFAULT_SETTINGS: HoarderSettings = {
  copies: 3,
  // A restart (kill, upgrade, reboot of a VM) is back well within a minute; copying every CID a node held costs the
  // cloud that node's whole share of content, so a blip must not trigger it.
  graceMs: 60_000,
  // `tau rollback` (one step) and `--to` a few deployments back stay instant; older ones are rebuilt by a push.
  keep: 5,
  publishTimeoutMs: 60_000,
};

/** Publish needs this many copies before the flip (or every hoarder node when the cloud has fewer). */
export const PUBLISH_COPIES = 2;

export async function readHoarderSettings(file: string | undefined): Promise<HoarderSettings> {
  if (!file) return { ...DEFAULT_SETTINGS };
  const src = parseYaml(await Deno.readTextFile(file));
  const v = (src.value ?? {}) as Record<string, unknown>;
  const h = v.hoarder;
  if (h === undefined || h === null) return { ...DEFAULT_SETTINGS };
  const at = (key: string) => {
    const line = src.lineOf(["hoarder", key]) ?? src.lineOf(["hoarder"]);
    return `${file}${line ? `:${line}` : ""}`;
  };
  if (typeof h !== "object" || Array.isArray(h)) {
    throw new TauError(`${at("")}: hoarder must be a map (copies, grace, keep, publish-timeout)`);
  }
  const m = h as Record<string, unknown>;
  for (const key of Object.keys(m)) {
    if (!["copies", "grace", "keep", "publish-timeout"].includes(key)) {
      throw new TauError(`${at(key)}: hoarder has no setting ${key}`, {
        hint: "hoarder takes copies, grace, keep and publish-timeout",
      });
    }
  }
  const count = (key: string, min: number, fallback: number) => {
    const n = m[key] ?? fallback;
    if (typeof n !== "number" || !Number.isInteger(n) || n < min) {
      throw new TauError(`${at(key)}: hoarder.${key} ${JSON.stringify(m[key])} must be a whole number >= ${min}`);
    }
    return n;
  };
  const duration = (key: string, fallback: number) => {
    if (m[key] === undefined) return fallback;
    try {
      return parseDuration(m[key] as string | number);
    } catch (err) {
      throw new TauError(`${at(key)}: hoarder.${key}: ${(err as Error).message}`);
    }
  };
  return {
    copies: count("copies", 1, DEFAULT_SETTINGS.copies),
    graceMs: duration("grace", DEFAULT_SETTINGS.graceMs),
    keep: count("keep", 0, DEFAULT_SETTINGS.keep),
    publishTimeoutMs: duration("publish-timeout", DEFAULT_SETTINGS.publishTimeoutMs),
  };
}
