/**
 * The open-file limit, raised when the node starts: every client connection is one file descriptor, and reaching the
 * limit is what killed the node in issue 8 (#4). `deno run` raises the soft limit to the hard one by itself, but a
 * compiled tau (denort) does not, and VMs often ship a hard limit of 1024-20000. So: the soft limit goes up to the
 * hard one, and when this process may raise the hard one (root, CAP_SYS_RESOURCE) both go up to at least
 * TARGET_FILES. Deno has no setrlimit API; libc's through FFI took 1.7-3.4 ms here, `prlimit --pid` (util-linux,
 * Linux only) 6-15 ms, so FFI it is.
 */

/** 65536, not the kernel's 1M ceiling: children (git, containers) inherit it, and some close every fd up to it. */
export const TARGET_FILES = 65536;

export interface FdLimit {
  soft: number;
  hard: number;
}

const PLATFORM = Deno.build.os === "darwin"
  ? { libs: ["libSystem.B.dylib"], nofile: 8 }
  : Deno.build.os === "linux"
  ? { libs: ["libc.so.6", "libc.so"], nofile: 7 }
  : undefined;

/** Raises RLIMIT_NOFILE as far as this process may; returns the limits in force after, or undefined if unknown. */
export function raiseFdLimit(target = TARGET_FILES): FdLimit | undefined {
  if (!PLATFORM) return undefined;
  let lib: ReturnType<typeof openLibc> | undefined;
  for (const name of PLATFORM.libs) {
    try {
      lib = openLibc(name);
      break;
    } catch { /* try the next name; without --allow-ffi every name fails and the limit stays as it is */ }
  }
  if (!lib) return undefined;
  try {
    const buf = new BigUint64Array(2);
    const bytes = new Uint8Array(buf.buffer);
    const get = (): FdLimit | undefined =>
      lib.symbols.getrlimit(PLATFORM.nofile, bytes) === 0
        ? { soft: toNumber(buf[0]), hard: toNumber(buf[1]) }
        : undefined;
    const set = (soft: bigint, hard: bigint) => {
      buf[0] = soft;
      buf[1] = hard;
      return lib.symbols.setrlimit(PLATFORM.nofile, bytes) === 0;
    };
    const before = get();
    if (!before || before.soft >= target) return before;
    const rawHard = buf[1];
    const want = BigInt(target);
    if (before.hard === Infinity) set(want, rawHard);
    // Raising the hard limit needs privilege: try that first, then settle for soft = hard.
    else if (before.hard >= target || !set(want, want)) set(rawHard, rawHard);
    return get();
  } finally {
    lib.close();
  }
}

function openLibc(name: string) {
  return Deno.dlopen(name, {
    getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
    setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  });
}

/** RLIM_INFINITY (all ones on Linux, 2^63-1 on macOS) as Infinity. */
function toNumber(v: bigint): number {
  return v >= 1n << 62n ? Infinity : Number(v);
}
