/**
 * How much YAML a config repo may hold. The YAML parser reads ~0.3-1 MB/s here (1-4 ms per KiB); a 32 MB
 * functions/bomb.yaml kept the node busy for ~80 s. A resource file is a few hundred bytes and a large project's
 * whole config is well under 1 MiB, so the caps leave two orders of magnitude of room and bound a parse to a few
 * seconds (on the config-parse worker, runtime/schema/off_thread.ts, never the serving thread).
 */
import type { ConfigIssue } from "./types.ts";
import { formatSize } from "./units.ts";

export const MAX_CONFIG_FILE_BYTES = 256_000;
export const MAX_CONFIG_TOTAL_BYTES = 2_000_000;

function mb(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1000).toFixed(1)} KB`;
}

/** Issues for YAML files over the per-file cap, then for the repo over the total cap (sizes in bytes). */
export function configSizeIssues(files: { path: string; size: number }[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  let total = 0;
  for (const { path, size } of files) {
    total += size;
    if (size > MAX_CONFIG_FILE_BYTES) {
      issues.push({
        file: path,
        message: `${mb(size)} is too large for a config file (at most ${formatSize(MAX_CONFIG_FILE_BYTES)}): ` +
          "keep data in the code repo",
      });
    }
  }
  if (total > MAX_CONFIG_TOTAL_BYTES && issues.length === 0) {
    issues.push({
      file: "config repo",
      message: `${mb(total)} of YAML in ${files.length} files is more than a config repo may hold ` +
        `(${formatSize(MAX_CONFIG_TOTAL_BYTES)}): remove unused resource files`,
    });
  }
  return issues;
}
