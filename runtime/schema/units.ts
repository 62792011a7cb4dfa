/**
 * Durations and sizes as written in config files ("5s", "10MB"). Both parsers throw a plain Error with a message
 * that is safe to show to a user; the schema turns it into a ConfigIssue with file and line.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "100ms", "5s", "1.5m", "1h", or "1m30s" to milliseconds. A bare number is already milliseconds. */
export function parseDuration(s: string | number): number {
  if (typeof s === "number") {
    if (!Number.isFinite(s) || s < 0) throw new Error(`duration ${s} must be a non-negative number of milliseconds`);
    return Math.round(s);
  }
  const text = s.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text));
  // Go-style compound durations ("1m30s") are common in Taubyte configs, so accept a sequence of parts.
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    part.lastIndex = pos;
    const m = part.exec(text);
    if (!m) throw new Error(`'${s}' is not a duration: use e.g. 500ms, 10s, 1m`);
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    pos = part.lastIndex;
  }
  if (pos === 0) throw new Error(`'${s}' is not a duration: use e.g. 500ms, 10s, 1m`);
  return Math.round(total);
}

// Sizes are decimal as in Taubyte (64MB = 64,000,000 bytes: a project moved from Taubyte keeps its limits); the
// binary units are there for who wants them (64KiB = one WebAssembly page). Memory limits become whole pages,
// rounded up (runtime/wasm/prepare.ts).
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1000 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** "64KB", "10MB", "1GiB", "512B" to bytes (KB, MB, GB decimal; KiB, MiB, GiB binary). A bare number is bytes. */
export function parseSize(s: string | number): number {
  if (typeof s === "number") {
    if (!Number.isFinite(s) || s < 0) throw new Error(`size ${s} must be a non-negative number of bytes`);
    return Math.round(s);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(s);
  const unit = m ? SIZE_UNITS[(m[2] || "b").toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`'${s}' is not a size: use e.g. 64KB, 16MB, 1GiB`);
  return Math.round(Number(m[1]) * unit);
}

/** Human form used in messages and docs: 16000000 -> "16MB", 65536 -> "64KiB", 300000 (ms) -> "5m". */
export function formatSize(bytes: number): string {
  const units = [["TB", 1000 ** 4], ["GB", 1000 ** 3], ["MB", 1000 ** 2], ["KB", 1000], ["GiB", 1024 ** 3], [
    "MiB",
    1024 ** 2,
  ], ["KiB", 1024]] as const;
  for (const [unit, n] of units) if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  return `${bytes}B`;
}

/** 300000 -> "5m", 4500000 -> "1h15m", 1500 -> "1500ms" (Go's compound form, as configs write it). */
export function formatDuration(ms: number): string {
  if (ms === 0 || ms % 1000 !== 0) return `${ms}ms`;
  let rest = ms / 1000;
  let out = "";
  for (const [unit, n] of [["h", 3600], ["m", 60], ["s", 1]] as const) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${unit}`;
      rest %= n;
    }
  }
  return out;
}
