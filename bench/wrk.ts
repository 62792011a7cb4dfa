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

/** Median (by requests/s) of three wrk runs: one run on a shared VM moves by 10-20%. */
export async function wrk(url: string, host?: string): Promise<WrkResult> {
  const runs = [await wrkOnce(url, host), await wrkOnce(url, host), await wrkOnce(url, host)];
  return runs.sort((a, b) => a.rps - b.rps)[1];
}

export async function wrkOnce(
  url: string,
  host?: string,
  opts: { seconds?: number; countErrors?: boolean } = {},
): Promise<WrkResult> {
  const args = [
    "-t1",
    `-c${CONNECTIONS}`,
    `-d${opts.seconds ?? SECONDS}s`,
    "--latency",
    ...(host ? ["-H", `Host: ${host}`] : []),
    url,
  ];
  const pinned = await has("taskset");
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
