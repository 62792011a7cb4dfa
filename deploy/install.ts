/**
 * `deno task install` (every other task runs it first): every npm package from deno.lock installed, and Deno's
 * cache settled, before any tau command runs. Afterwards no command prints Deno's `Download ...` lines over its own
 * output, whatever order the cache was filled in.
 *
 * Why more than `deno install --frozen`: while Deno builds a module graph it starts a background fetch of the
 * registry metadata of every npm package the graph names. When the packages came from the lockfile alone (as
 * `deno task` installs them before running a task), that metadata was never fetched; every short command then starts
 * the fetch, prints `Download https://.../hono`, and exits before it completes, so the next command prints it again
 * (measured with Deno 2.9.6: hono's 5 MB metadata never finished inside a `--help` run). A probe tells whether a
 * short run would print anything; if so this process starts the same fetches and stays alive until they are stored.
 *
 * `--quiet`: print only on failure (the test helpers use it). `--probe`: internal, one short run that names every
 * package in deno.json.
 */
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;
/** Probes after the first, 500 ms apart: the fetches take ~0.1-0.5 s each on this machine; 60 probes is 30 s. */
const MAX_PROBES = 60;

/** Start Deno's metadata fetch for every package in deno.json's imports, without loading any package's code. */
async function nameEveryPackage(): Promise<void> {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))) as { imports: Record<string, string> };
  const packages = Object.entries(config.imports).filter(([key, target]) =>
    !key.endsWith("/") && target.startsWith("npm:")
  );
  // A subpath import is enough for the graph to name the package; most packages do not export package.json, so the
  // import itself usually fails, and that is fine: only the fetch it starts matters.
  await Promise.all(
    packages.map(([, target]) => import(`${target}/package.json`, { with: { type: "json" } }).catch(() => {})),
  );
}

/** What a short run that names every package prints on stderr: "" once the cache is settled. */
async function probe(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SELF, "--probe"],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stderr).trim();
}

/** Installs from the lockfile, then settles the cache. Returns the problem in one line, or undefined when all is well. */
export async function install(opts: { quiet?: boolean } = {}): Promise<string | undefined> {
  const quiet = opts.quiet ?? false;
  const installed = await new Deno.Command(Deno.execPath(), {
    args: ["install", "--frozen", ...(quiet ? ["--quiet"] : [])],
    cwd: ROOT,
    stdin: "null",
    stdout: quiet ? "piped" : "inherit",
    stderr: quiet ? "piped" : "inherit",
  }).output();
  if (!installed.success) {
    const dec = new TextDecoder();
    const detail = quiet ? `\n${dec.decode(installed.stderr)}${dec.decode(installed.stdout)}` : "";
    return `deno install --frozen failed (exit ${installed.code}): a lockfile that does not match deno.json, ` +
      `or the npm registry out of reach${detail}`;
  }
  let stray = await probe();
  if (!stray) return undefined;
  if (!quiet) console.error("install: fetching npm registry metadata that the lockfile install skipped...");
  await nameEveryPackage();
  for (let i = 0; i < MAX_PROBES && stray; i++) {
    await new Promise((r) => setTimeout(r, 500));
    stray = await probe();
  }
  if (!stray) return undefined;
  return `Deno still prints this on every run after ${MAX_PROBES / 2} s: ${stray.split("\n")[0]}`;
}

if (import.meta.main) {
  if (Deno.args.includes("--probe")) {
    await nameEveryPackage();
  } else {
    const quiet = Deno.args.includes("--quiet");
    const problem = await install({ quiet });
    if (problem) {
      console.error(`error: ${problem}\n  hint: check that the npm registry is reachable, then run deno task install`);
      Deno.exit(1);
    }
  }
}
