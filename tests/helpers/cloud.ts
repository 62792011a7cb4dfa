/**
 * End-to-end helpers: a real local cloud in a child process (`main.ts dev`), the real CLI as a subprocess, the real
 * git CLI, and an HTTP client that can set the Host header (fetch cannot), all on loopback.
 */
import { concatBytes } from "../../runtime/bytes.ts";
import { join } from "node:path";
import { NODE_V8_FLAGS_ARG } from "../../runtime/wasm/v8_flags.ts";

/**
 * Processes the tests start use node_modules as the install step left it: with `auto`, every start takes the
 * node_modules lock to check it, and under a loaded CI run nodes were seen blocked on that lock past their ready
 * timeout ("Blocking waiting for file lock on node_modules directory").
 */
export const NODE_MODULES_MANUAL = "--node-modules-dir=manual";

const ROOT = new URL("../../", import.meta.url).pathname;
export const MAIN = join(ROOT, "main.ts");

let installed: Promise<void> | undefined;

/**
 * Every package the CLI imports installed and Deno's cache settled (deploy/install.ts) before the first CLI child
 * starts. A child that finds something missing prints Deno's `Download ...` lines on its stderr, which would break the
 * tests that hold the CLI to its promise of exactly one `error:` and one `hint:` line. `deno task test` installs first
 * and says so (TAU_TEST_INSTALLED=1), which saves each file this ~1 s; this keeps a test file run on its own, or on a
 * cold cache, independent of which process fills the cache first.
 */
export function ensureInstalled(): Promise<void> {
  if (Deno.env.get("TAU_TEST_INSTALLED") === "1") installed ??= Promise.resolve();
  installed ??= (async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "deploy/install.ts"), "--quiet"],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const dec = new TextDecoder();
      throw new Error(`deno task install failed (${out.code}):\n${dec.decode(out.stderr)}${dec.decode(out.stdout)}`);
    }
  })();
  return installed;
}

export interface Cloud {
  url: string;
  port: number;
  pid: number;
  dataDir: string;
  output: () => string;
  stop(): Promise<void>;
  /** Resolves with the exit status once the node has exited (for whatever reason). */
  exited: Promise<Deno.CommandStatus>;
}

/**
 * Start `tau dev` on a free loopback port; resolves once it prints its ready line. `args` go to `tau dev`; `env` is
 * its environment; `wrap` runs the node under another command (e.g. `["prlimit", "--nofile=200:200"]`, which execs
 * it: same pid).
 */
export async function startCloud(
  dataDir: string,
  opts: { args?: string[]; env?: Record<string, string>; wrap?: string[] } = {},
): Promise<Cloud> {
  await ensureInstalled();
  const node = [
    Deno.execPath(),
    "run",
    "-A",
    NODE_MODULES_MANUAL,
    NODE_V8_FLAGS_ARG,
    MAIN,
    "dev",
    "--http",
    "127.0.0.1:0",
    "--data",
    dataDir,
    ...opts.args ?? [],
  ];
  const command = [...opts.wrap ?? [], ...node];
  const child = new Deno.Command(command[0], {
    args: command.slice(1),
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
    cwd: ROOT,
  }).spawn();
  let out = "";
  const dec = new TextDecoder();
  const collect = async (stream: ReadableStream<Uint8Array>, onText: () => void) => {
    for await (const chunk of stream) {
      out += dec.decode(chunk);
      onText();
    }
  };
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = out.match(/ready: gateway (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve(m[1]);
    };
    collect(child.stdout, check).catch(() => {});
    collect(child.stderr, check).catch(() => {});
    child.status.then((s) => reject(new Error(`tau dev exited (${s.code}) before it was ready:\n${out}`)));
  });
  return {
    url,
    port: Number(new URL(url).port),
    pid: child.pid,
    dataDir,
    output: () => out,
    exited: child.status,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      // A node that cannot shut down within 15 s is a bug the test should not hang on: kill it.
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 15_000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function tau(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; stdin?: "null" } = {},
): Promise<Run> {
  await ensureInstalled();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", NODE_MODULES_MANUAL, MAIN, ...args],
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
    stdin: opts.stdin,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The CLI with `input` on its stdin (a pipe, not a terminal): `tau call --data -`, `tau secret set`. */
export async function tauWithStdin(args: string[], input: string | Uint8Array): Promise<Run> {
  await ensureInstalled();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", NODE_MODULES_MANUAL, MAIN, ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(typeof input === "string" ? new TextEncoder().encode(input) : input);
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

export async function sh(cmd: string, args: string[], cwd?: string): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: {
      GIT_AUTHOR_NAME: "test",
      GIT_AUTHOR_EMAIL: "test@localhost",
      GIT_COMMITTER_NAME: "test",
      GIT_COMMITTER_EMAIL: "test@localhost",
      GIT_TERMINAL_PROMPT: "0",
    },
  }).output();
  const dec = new TextDecoder();
  const run = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if (run.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${run.code}): ${run.stderr}${run.stdout}`);
  return run;
}

/** git add -A, commit (an empty commit with allowEmpty: a retry of the same config), push; returns the commit id. */
export async function commitAndPush(repo: string, message: string, allowEmpty = false): Promise<string> {
  await sh("git", ["add", "-A"], repo);
  await sh("git", ["commit", "-q", ...(allowEmpty ? ["--allow-empty"] : []), "-m", message], repo);
  await sh("git", ["push", "-q", "origin", "HEAD:main"], repo);
  return (await sh("git", ["rev-parse", "HEAD"], repo)).stdout.trim();
}

export interface HostResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
  text: string;
}

/** One HTTP/1.1 request over a fresh loopback TCP connection (to 127.0.0.1 or `address`), with the Host we choose. */
export async function hostRequest(
  port: number,
  host: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; address?: string } = {},
  hostname = opts.address ?? "127.0.0.1",
): Promise<HostResponse> {
  const conn = await Deno.connect({ hostname, port });
  const body = opts.body ?? "";
  const lines = [`${opts.method ?? "GET"} ${path} HTTP/1.1`, `Host: ${host}`, "Connection: close"];
  for (const [k, v] of Object.entries(opts.headers ?? {})) lines.push(`${k}: ${v}`);
  if (body) lines.push(`Content-Length: ${new TextEncoder().encode(body).length}`);
  await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n" + body));
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  while (true) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  conn.close();
  const all = concatBytes(chunks);
  const raw = new TextDecoder("latin1").decode(all);
  const headEnd = raw.indexOf("\r\n\r\n");
  const [statusLine, ...headerLines] = raw.slice(0, headEnd).split("\r\n");
  const headers = new Headers();
  for (const l of headerLines) {
    const i = l.indexOf(":");
    headers.append(l.slice(0, i).trim(), l.slice(i + 1).trim());
  }
  let bodyBytes: Uint8Array = all.subarray(headEnd + 4);
  if (headers.get("transfer-encoding")?.includes("chunked")) bodyBytes = dechunk(bodyBytes);
  return {
    status: Number(statusLine.split(" ")[1]),
    headers,
    body: bodyBytes,
    text: new TextDecoder().decode(bodyBytes),
  };
}

function dechunk(data: Uint8Array): Uint8Array {
  const out: Uint8Array[] = [];
  const dec = new TextDecoder("latin1");
  let at = 0;
  while (at < data.length) {
    const lineEnd = dec.decode(data.subarray(at, Math.min(at + 20, data.length))).indexOf("\r\n");
    const size = parseInt(dec.decode(data.subarray(at, at + lineEnd)), 16);
    if (!size) break;
    out.push(data.subarray(at + lineEnd + 2, at + lineEnd + 2 + size));
    at += lineEnd + 2 + size + 2;
  }
  return concatBytes(out);
}

/** Wait (bounded) for the build of `commit` to finish; returns the job. */
export async function waitForBuild(cloudUrl: string, project: string, commit: string): Promise<Record<string, string>> {
  for (let i = 0; i < 600; i++) {
    const jobs = await (await fetch(`${cloudUrl}/api/builds?project=${project}`)).json() as Record<string, string>[];
    const job = jobs.find((j) => j.commit === commit);
    if (job) {
      return await (await fetch(`${cloudUrl}/api/builds/${job.id}?wait=1`)).json();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no build for ${commit} after 30 s`);
}

/** A project with one website answering `text` on `host`, built and live; returns the project's folder. */
export async function siteProject(
  cloud: Cloud,
  work: string,
  name: string,
  host: string,
  text: string,
): Promise<string> {
  const r = await tau(["new", "project", name, "--cloud", cloud.url], { cwd: work });
  if (r.code !== 0) throw new Error(`tau new project ${name}: ${r.stderr}`);
  const dir = join(work, name);
  for (const args of [["new", "domain", "web", "--fqdn", host], ["new", "website", "home", "--paths", "/"]]) {
    const s = await tau(args, { cwd: dir });
    if (s.code !== 0) throw new Error(`tau ${args.join(" ")}: ${s.stderr}`);
  }
  await Deno.writeTextFile(join(dir, "code/websites/home/index.html"), text);
  await waitForBuild(cloud.url, name, await commitAndPush(join(dir, "code"), "site"));
  const job = await waitForBuild(cloud.url, name, await commitAndPush(join(dir, "config"), "site"));
  if (job.status !== "success") throw new Error(`project ${name} did not build: ${job.error}`);
  return dir;
}
