/**
 * Upstreams: the only addresses the node fetches git from on a user's behalf (a mirrored project's config or code
 * repo). The node runs as root and anyone on the machine may create a project, so an upstream is a value from an
 * untrusted user that reaches `git fetch`. What is accepted, and why:
 *
 * - `https://host[:port]/path`: the normal case (GitHub, GitLab, any git host).
 * - `http://` only to a loopback host (127.0.0.0/8, ::1, localhost): traffic that never leaves the machine (a git
 *   server beside the node, and the tests' dumb-HTTP upstream). Elsewhere plain http lets anyone on the path change
 *   the code that gets deployed.
 * - Nothing else: no file:// or local paths (they read any repo root can read, e.g. /root/private-repo), no ext:: or
 *   other `helper::` transports (they run commands), no ssh:// or `git@host:path` (ssh would log in with root's own
 *   keys: any local user could mirror whatever those keys reach, ssh://localhost included), no value that looks like
 *   an option, no credentials in the URL (they would be stored and shown by `tau project`), no query or fragment.
 *
 * git enforces the same rule itself on every connection a fetch opens (redirects, alternates, submodules):
 * GIT_ALLOW_PROTOCOL lists https (and http for a loopback upstream, which also never follows redirects). The fetch
 * runs with a clean environment: no global or system git config (no `url.insteadOf` rewrite or credential helper of
 * the operator's), HOME pointing nowhere (no ~/.netrc, no ~/.ssh), no askpass, no terminal prompt.
 */
import { TauError } from "../errors.ts";
import { git } from "./git.ts";

/** Longer than any real repository URL; keeps KV values and error lines small. */
export const MAX_UPSTREAM_LENGTH = 2048;

const HINT = "use an https:// URL of the repository, e.g. https://github.com/you/config.git " +
  "(http:// only to this machine: 127.0.0.1, ::1 or localhost)";

function refuse(what: string, raw: string, why: string): never {
  const shown = raw.length > 80 ? `${raw.slice(0, 77)}...` : raw;
  throw new TauError(`${what} ${JSON.stringify(shown)} is refused: ${why}`, { status: 400, hint: HINT });
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The upstream as the node will store and fetch it (the parsed URL's normal form, so that git sees exactly what was
 * checked), or a 400 TauError saying why it is refused.
 */
export function checkUpstreamUrl(raw: unknown, what = "upstream"): string {
  if (typeof raw !== "string") throw new TauError(`${what} must be a URL string`, { status: 400, hint: HINT });
  if (raw.length > MAX_UPSTREAM_LENGTH) {
    refuse(what, raw, `it is ${raw.length} characters long; at most ${MAX_UPSTREAM_LENGTH}`);
  }
  if (raw.startsWith("-")) refuse(what, raw, "it looks like a command-line option");
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x20\x7f\\]/.test(raw)) refuse(what, raw, "it contains spaces, control characters or backslashes");
  const scheme = raw.match(/^([a-z][a-z0-9+.-]*):\/\//i)?.[1]?.toLowerCase();
  if (!scheme) {
    if (/^[a-z][a-z0-9+.-]*::/i.test(raw)) refuse(what, raw, "git remote helpers (ext::, fd::, ...) can run commands");
    if (/^[^/]+:/.test(raw)) refuse(what, raw, "ssh upstreams (git@host:path) are not supported");
    refuse(what, raw, "local paths are not upstreams");
  }
  if (scheme !== "https" && scheme !== "http") {
    refuse(
      what,
      raw,
      scheme === "file"
        ? "file:// reads this machine's disk"
        : scheme === "ssh" || scheme === "git+ssh"
        ? "ssh upstreams are not supported"
        : `${scheme}:// is not a supported transport`,
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    refuse(what, raw, "it is not a valid URL");
  }
  if (!url.hostname) refuse(what, raw, "it has no host");
  if (url.username || url.password) {
    refuse(what, raw, "credentials in the URL would be stored and shown in project listings");
  }
  if (url.search || url.hash || raw.includes("?") || raw.includes("#")) {
    refuse(what, raw, "a repository URL has no query or fragment");
  }
  if (scheme === "http" && !isLoopbackHost(url.hostname)) {
    refuse(what, raw, "plain http:// is accepted only to this machine (127.0.0.1, ::1, localhost)");
  }
  return url.href;
}

/** Environment for a git process that talks to an upstream: nothing of the operator's config, keys or prompts. */
function upstreamEnv(url: string): Record<string, string> {
  const plainHttp = url.startsWith("http:");
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: "/nonexistent",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ALLOW_PROTOCOL: plainHttp ? "https:http" : "https",
    // Command-line-level config (above any repo config): a plain-http upstream never follows a redirect elsewhere,
    // and an upstream that stops sending (under 1 KB/s for 30 s) fails the fetch instead of holding the API request.
    GIT_CONFIG_COUNT: "4",
    GIT_CONFIG_KEY_0: "http.followRedirects",
    GIT_CONFIG_VALUE_0: plainHttp ? "false" : "initial",
    GIT_CONFIG_KEY_1: "fetch.recurseSubmodules",
    GIT_CONFIG_VALUE_1: "false",
    GIT_CONFIG_KEY_2: "http.lowSpeedLimit",
    GIT_CONFIG_VALUE_2: "1000",
    GIT_CONFIG_KEY_3: "http.lowSpeedTime",
    GIT_CONFIG_VALUE_3: "30",
  };
  // An operator's outbound proxy still applies.
  for (const name of ["https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"]) {
    const value = Deno.env.get(name);
    if (value) env[name] = value;
  }
  return env;
}

/**
 * Fetch every branch of `upstream` into the bare repo at `repoDir` (forced and pruned: the upstream is the source of
 * truth). The URL is checked again here: a project stored before these rules existed must not slip through.
 */
export async function fetchUpstreamBranches(repoDir: string, upstream: string): Promise<void> {
  const url = checkUpstreamUrl(upstream);
  await git(["fetch", "--quiet", "--prune", "--no-tags", "--", url, "+refs/heads/*:refs/heads/*"], {
    cwd: repoDir,
    env: upstreamEnv(url),
    clearEnv: true,
  });
}
