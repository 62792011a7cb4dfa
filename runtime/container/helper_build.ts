/**
 * Provides tau-ns-helper (the C program in ./helper) in `<data>/bin`, once per source version: the binary's name
 * carries a hash of the sources, so an edited helper is rebuilt on next use and concurrent builds (parallel tests)
 * never see a half-written file. A standalone `tau` binary carries the helper prebuilt (`deno task compile` puts it
 * in ./helper/prebuilt/ and embeds it); it is unpacked on first use, since embedded files cannot be executed. From a
 * source checkout the helper is compiled with the system C compiler instead.
 */
import { TauError } from "../errors.ts";

const SOURCE_DIR = new URL("./helper/", import.meta.url);
const SOURCES = [
  "helper.h",
  "main.c",
  "run.c",
  "exec.c",
  "init.c",
  "rootfs.c",
  "secure.c",
  "cgroups.c",
  "devices.c",
  "userns.c",
  "forward.c",
  "netns.c",
  "status.c",
];

async function sourceHash(): Promise<string> {
  const parts: Uint8Array[] = [];
  for (const name of SOURCES) parts.push(await Deno.readFile(new URL(name, SOURCE_DIR)));
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length + 1;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Where `deno task compile` leaves the prebuilt helper, named like the built one (by source hash). */
export const PREBUILT_DIR = new URL("./helper/prebuilt/", import.meta.url).pathname;

const building = new Map<string, Promise<string>>();

/** Path of a helper binary matching the current sources: unpacked when prebuilt, else compiled, first if needed. */
export function ensureHelper(dataDir: string, prebuiltDir = PREBUILT_DIR): Promise<string> {
  let p = building.get(dataDir);
  if (!p) {
    p = build(dataDir, prebuiltDir);
    building.set(dataDir, p);
    p.catch(() => building.delete(dataDir));
  }
  return p;
}

async function build(dataDir: string, prebuiltDir: string): Promise<string> {
  const hash = await sourceHash();
  const binDir = `${dataDir}/bin`;
  const target = `${binDir}/tau-ns-helper-${hash}`;
  try {
    await Deno.stat(target);
    return target;
  } catch { /* not built yet */ }
  await Deno.mkdir(binDir, { recursive: true });
  const tmp = `${target}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const prebuilt = await Deno.readFile(`${prebuiltDir}/tau-ns-helper-${hash}`).catch(() => null);
  if (prebuilt) {
    await Deno.writeFile(tmp, prebuilt, { mode: 0o755 });
    await Deno.chmod(tmp, 0o755); // writeFile's mode is filtered by the umask
  } else {
    await compile(tmp);
  }
  await Deno.rename(tmp, target);
  // Older builds are useless once the sources changed.
  for await (const e of Deno.readDir(binDir)) {
    if (e.name.startsWith("tau-ns-helper-") && `${binDir}/${e.name}` !== target && !e.name.includes(".tmp-")) {
      await Deno.remove(`${binDir}/${e.name}`).catch(() => {});
    }
  }
  return target;
}

/** Compiles the helper into `<dir>/tau-ns-helper-<source hash>` (what `deno task compile` embeds); returns the path. */
export async function buildPrebuiltHelper(dir = PREBUILT_DIR): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const out = `${dir}/tau-ns-helper-${await sourceHash()}`;
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith("tau-ns-helper-")) await Deno.remove(`${dir}/${e.name}`);
  }
  await compile(out);
  return out;
}

async function compile(tmp: string): Promise<void> {
  const files = SOURCES.filter((s) => s.endsWith(".c")).map((s) => new URL(s, SOURCE_DIR).pathname);
  const cc = Deno.env.get("CC") ?? "cc";
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cc, {
      args: ["-static", "-O2", "-Wall", "-Wno-format-truncation", "-o", tmp, ...files],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (err) {
    throw new TauError(`cannot build the container helper: C compiler '${cc}' not found`, {
      hint: "install a C compiler and static libc (Debian: apt-get install gcc libc6-dev), or set CC",
      detail: String(err),
    });
  }
  if (!out.success) {
    await Deno.remove(tmp).catch(() => {});
    throw new TauError("cannot build the container helper (tau-ns-helper)", {
      hint: "a static libc is needed (Debian: apt-get install libc6-dev); run with --verbose for compiler output",
      detail: new TextDecoder().decode(out.stderr),
    });
  }
}
