/** wrk, run the same way by every benchmark: one thread, 64 connections, pinned to core 1 when taskset exists. */

export const CONNECTIONS = 64;
export const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);

export interface WrkResult {
  requests: number;
  /** non-2xx/3xx answers (only with countErrors; otherwise they throw) */
  failed: number;
  socketErrors: number;
  /** e.g. "connect 0, read 0, write 0, timeout 4" (empty when wrk saw none) */
  socketErrorText: string;
  rps: number;
  p50: number;
  p99: number;
}

export async function has(cmd: string): Promise<boolean> {
  try {
    await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" }).output().then((o) => {
      if (!o.success) throw new Error();
    });
    return true;
  } catch {
    return false;
  }
}

function ms(text: string): number {
  const m = text.match(/([\d.]+)(us|ms|s)/);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

/** At least this many baseline/subject pairs for every ratio a goal is judged by (issue 11). */
export const PAIRS = Number(Deno.env.get("BENCH_PAIRS") ?? 5);

export interface PairedResult {
  baseline: WrkResult;
  subject: WrkResult;
  /** median of the per-pair ratios subject/baseline (each pair measured back to back, so drift cancels) */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
  /** every pair's ratio, in run order */
  ratios: number[];
  /** With a reference: its median run and the median ratio subject/reference (measured in the same rounds). */
  reference?: WrkResult;
  referenceRatio?: number;
}

const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The run whose requests/s is the median, and the median p50/p99 of all runs (so one GC-heavy run does not rule). */
function medianRun(runs: WrkResult[]): WrkResult {
  const mid = [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)];
  return {
    ...mid,
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
  };
}

/**
 * Baseline, subject, baseline, subject... `pairs` times, each a wrk run (after one warm-up of each): this VM's speed
 * drifts by tens of percent over a minute, so a ratio is only trusted between runs taken back to back. The result is
 * the median of the per-pair ratios with their spread, and the median run of each side.
 */
export async function interleaved(
  baseline: { url: string; host?: string },
  subject: { url: string; host?: string },
  pairs = PAIRS,
  reference?: { url: string; host?: string },
): Promise<PairedResult> {
  await wrkOnce(baseline.url, baseline.host, { seconds: 1 });
  await wrkOnce(subject.url, subject.host, { seconds: 1 });
  if (reference) await wrkOnce(reference.url, reference.host, { seconds: 1 });
  const base: WrkResult[] = [];
  const subj: WrkResult[] = [];
  const refs: WrkResult[] = [];
  const ratios: number[] = [];
  const refRatios: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const b = await wrkOnce(baseline.url, baseline.host);
    const s = await wrkOnce(subject.url, subject.host);
    base.push(b);
    subj.push(s);
    ratios.push(s.rps / b.rps);
    if (reference) {
      const r = await wrkOnce(reference.url, reference.host);
      refs.push(r);
      refRatios.push(s.rps / r.rps);
    }
  }
  return {
    baseline: medianRun(base),
    subject: medianRun(subj),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
    ratios,
    ...(reference ? { reference: medianRun(refs), referenceRatio: median(refRatios) } : {}),
  };
}

/** One line for a paired figure: subject and baseline medians, the ratio median and spread, the subject's tail. */
export function pairedLine(label: string, r: PairedResult, goal?: string): string {
  return `${label.padEnd(28)} ${r.subject.rps.toFixed(0).padStart(7)} req/s vs ${
    r.baseline.rps.toFixed(0).padStart(7)
  }` +
    `  ratio ${r.ratio.toFixed(2)} (${r.ratioMin.toFixed(2)}-${r.ratioMax.toFixed(2)}, ${r.ratios.length} pairs)` +
    `  p50 ${r.subject.p50.toFixed(2)} ms  p99 ${r.subject.p99.toFixed(2)} ms${goal ? `  [goal ${goal}]` : ""}` +
    (r.reference
      ? `\n${"".padEnd(28)} vs the same answer from raw Deno.serve (${r.reference.rps.toFixed(0)} req/s): ` +
        `ratio ${r.referenceRatio!.toFixed(2)}`
      : "");
}

/** Median (by requests/s) of three wrk runs: one run on a shared VM moves by 10-20%. */
export async function wrk(url: string, host?: string): Promise<WrkResult> {
  const runs = [await wrkOnce(url, host), await wrkOnce(url, host), await wrkOnce(url, host)];
  return runs.sort((a, b) => a.rps - b.rps)[1];
}

export async function wrkOnce(
  url: string,
  host?: string,
  opts: { seconds?: number; countErrors?: boolean; threads?: number } = {},
): Promise<WrkResult> {
  const args = [
    `-t${opts.threads ?? 1}`,
    `-c${CONNECTIONS}`,
    `-d${opts.seconds ?? SECONDS}s`,
    "--latency",
    ...(host ? ["-H", `Host: ${host}`] : []),
    url,
  ];
  // One wrk thread runs on core 1 (the servers on core 0); several run wherever the kernel puts them.
  const pinned = (opts.threads ?? 1) === 1 && await has("taskset");
  const out = await new Deno.Command(pinned ? "taskset" : "wrk", {
    args: pinned ? ["-c", "1", "wrk", ...args] : args,
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(text.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN);
  const non2xx = text.match(/Non-2xx or 3xx responses: (\d+)/);
  if (non2xx && !opts.countErrors) throw new Error(`wrk saw ${non2xx[1]} error responses from ${url} (${host})`);
  const socketErrors = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    requests: Number(text.match(/(\d+) requests in/)?.[1] ?? NaN),
    failed: Number(non2xx?.[1] ?? 0),
    socketErrors: socketErrors ? socketErrors.slice(1).reduce((n, v) => n + Number(v), 0) : 0,
    socketErrorText: socketErrors ? socketErrors[0].replace("Socket errors: ", "") : "",
    rps,
    p50: ms(text.match(/ 50%\s+(\S+)/)?.[1] ?? ""),
    p99: ms(text.match(/ 99%\s+(\S+)/)?.[1] ?? ""),
  };
}

export function pin(cmd: string[], core: number): string[] {
  return ["taskset", "-c", String(core), ...cmd];
}
