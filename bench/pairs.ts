/**
 * Interleaved measurements for a noisy shared VM: baseline and subject alternate (b, s, b, s, ...), so drift in the
 * machine's load hits both alike, and each figure is printed as its median with the spread (min-max) of its runs.
 */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** "123 (spread 110-140)" with `digits` decimals. */
export function spread(xs: number[], digits = 0): string {
  return `${median(xs).toFixed(digits)} (spread ${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;
}

export interface Pairs<B, S = B> {
  baseline: B[];
  subject: S[];
}

/** Runs `pairs` rounds of baseline then subject (after `warmup` unrecorded rounds). */
export async function interleave<B, S = B>(
  pairs: number,
  baseline: () => Promise<B>,
  subject: () => Promise<S>,
  warmup = 0,
): Promise<Pairs<B, S>> {
  const out: Pairs<B, S> = { baseline: [], subject: [] };
  for (let i = 0; i < warmup + pairs; i++) {
    const b = await baseline();
    const s = await subject();
    if (i < warmup) continue;
    out.baseline.push(b);
    out.subject.push(s);
  }
  return out;
}
