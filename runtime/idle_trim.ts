/**
 * Gives freed allocator memory back to the OS once the node has gone quiet after work. glibc's malloc keeps what a
 * burst of work freed (a build: git, frames to and from the helpers, Helia's block writes on Deno's I/O threads, each
 * with its own arena) for reuse; a node at rest should not hold it. Measured on a `tau dev` node after one build,
 * helpers retired: 49-57 MB private before malloc_trim, 47-49 MB after, the call taking 1-9 ms. So it runs only when
 * the process has used almost no CPU for a whole check period after a period that did work, never under load.
 * Linux with glibc only (found through FFI, which the node has for Helia anyway); elsewhere it does nothing.
 */

/** How often the process's CPU time is looked at (TAU_TRIM_CHECK_MS overrides: the memory bench shortens it). */
export function trimCheckMs(): number {
  const env = Deno.env.get("TAU_TRIM_CHECK_MS");
  const ms = env === undefined ? NaN : Number(env);
  return Number.isFinite(ms) && ms >= 100 ? ms : 15_000;
}
/** A check period is quiet when the process used less than this share of one core during it. */
const QUIET_SHARE = 0.02;
/** Linux's clock ticks per second for /proc/<pid>/stat (USER_HZ: 100 on every mainstream kernel build). */
const TICKS_PER_SECOND = 100;

export interface IdleTrim {
  /** Times memory was given back (tests, reports). */
  readonly trims: number;
  stop(): void;
}

/** CPU time of this process so far in ms, or undefined without /proc. */
export function cpuMs(): number | undefined {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 1000 / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

type Libc = Deno.DynamicLibrary<{ malloc_trim: { parameters: ["usize"]; result: "i32" } }>;

function openLibc(): Libc | undefined {
  if (Deno.build.os !== "linux" || Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
  try {
    return Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
  } catch {
    return undefined; // not glibc (musl has no malloc_trim), or no libc.so.6
  }
}

export function startIdleTrim(checkMs = trimCheckMs()): IdleTrim {
  const libc = openLibc();
  let last = cpuMs();
  if (!libc || last === undefined) {
    libc?.close();
    return { trims: 0, stop() {} };
  }
  let worked = true; // start-up itself is work
  let trims = 0;
  const timer = setInterval(() => {
    const now = cpuMs() ?? last!;
    const quiet = now - last! < checkMs * QUIET_SHARE;
    last = now;
    if (!quiet) {
      worked = true;
    } else if (worked) {
      worked = false;
      libc.symbols.malloc_trim(0n);
      trims++;
    }
  }, checkMs);
  Deno.unrefTimer(timer);
  return {
    get trims() {
      return trims;
    },
    stop() {
      clearInterval(timer);
      libc.close();
    },
  };
}
