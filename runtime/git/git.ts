/**
 * The few git operations the cloud needs, run through the real `git` binary. Always async (Deno.Command): a
 * synchronous git call inside the process that also serves git over HTTP deadlocks on the first clone.
 */
import { TauError } from "../errors.ts";

export interface GitResult {
  stdout: Uint8Array;
  stderr: string;
}

export async function git(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; clearEnv?: boolean; stdin?: Uint8Array } = {},
): Promise<GitResult> {
  const cmd = new Deno.Command("git", {
    args,
    cwd: opts.cwd,
    env: { GIT_TERMINAL_PROMPT: "0", ...opts.env },
    clearEnv: opts.clearEnv,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  });
  let child: Deno.ChildProcess;
  try {
    child = cmd.spawn();
  } catch (err) {
    throw new TauError("git is not installed", { hint: "install git (apt-get install git)", cause: err });
  }
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new TauError(`git ${args[0]} failed: ${stderr.trim().split("\n").pop()}`, { detail: stderr, status: 500 });
  }
  return { stdout: out.stdout, stderr };
}

export async function gitText(args: string[], opts: Parameters<typeof git>[1] = {}): Promise<string> {
  return new TextDecoder().decode((await git(args, opts)).stdout).trim();
}

export async function initBareRepo(path: string): Promise<void> {
  await git(["init", "--quiet", "--bare", "--initial-branch=main", path]);
  // Pushes over smart HTTP need receive-pack enabled; no user auth on a local cloud (loopback only).
  await git(["config", "http.receivepack", "true"], { cwd: path });
}

/** Branch heads of a bare repo: branch name -> commit. */
export async function listHeads(repo: string): Promise<Map<string, string>> {
  const text = await gitText(["for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"], { cwd: repo });
  const heads = new Map<string, string>();
  for (const line of text.split("\n")) {
    const [name, sha] = line.split(" ");
    if (name && sha) heads.set(name, sha);
  }
  return heads;
}

/**
 * Commit a set of files straight into a bare repo's branch (no work tree): used to give a new project's config repo
 * its first commit. Builds blobs and trees with hash-object/mktree, then commit-tree and update-ref.
 */
export async function commitFiles(repo: string, branch: string, files: Record<string, string>, message: string) {
  type Tree = Map<string, Tree | string>;
  const root: Tree = new Map();
  for (const [path, text] of Object.entries(files)) {
    const parts = path.split("/");
    let node = root;
    for (const dir of parts.slice(0, -1)) {
      if (!node.has(dir)) node.set(dir, new Map());
      node = node.get(dir) as Tree;
    }
    const blob = await gitText(["hash-object", "-w", "--stdin"], { cwd: repo, stdin: new TextEncoder().encode(text) });
    node.set(parts[parts.length - 1], blob);
  }
  async function writeTree(tree: Tree): Promise<string> {
    const lines: string[] = [];
    for (const [name, value] of tree) {
      if (typeof value === "string") lines.push(`100644 blob ${value}\t${name}`);
      else lines.push(`040000 tree ${await writeTree(value)}\t${name}`);
    }
    return await gitText(["mktree"], { cwd: repo, stdin: new TextEncoder().encode(lines.join("\n") + "\n") });
  }
  const tree = await writeTree(root);
  const env = {
    GIT_AUTHOR_NAME: "tau",
    GIT_AUTHOR_EMAIL: "tau@localhost",
    GIT_COMMITTER_NAME: "tau",
    GIT_COMMITTER_EMAIL: "tau@localhost",
  };
  const commit = await gitText(["commit-tree", tree, "-m", message], { cwd: repo, env });
  await git(["update-ref", `refs/heads/${branch}`, commit], { cwd: repo });
  return commit;
}

/**
 * Every regular file of a commit (or only those matching `pathspecs`, e.g. "*.yaml" at any depth), read in one
 * `git archive` call (path -> bytes). Symlinks and submodules skipped.
 */
export async function readTree(
  repo: string,
  commit: string,
  pathspecs: string[] = [],
): Promise<Record<string, Uint8Array>> {
  const { stdout } = await git(["archive", "--format=tar", commit, ...(pathspecs.length ? ["--", ...pathspecs] : [])], {
    cwd: repo,
  });
  return untar(stdout);
}

/** Regular files of a commit with their sizes, without reading them (`git ls-tree -r -l`). */
export async function listFiles(repo: string, commit: string): Promise<{ path: string; size: number }[]> {
  const { stdout } = await git(["ls-tree", "-r", "-l", "-z", commit], { cwd: repo });
  const out: { path: string; size: number }[] = [];
  for (const entry of new TextDecoder().decode(stdout).split("\0")) {
    // "<mode> blob <sha> <size>\t<path>"; symlinks (120000) and submodules (commit) are not files.
    const m = entry.match(/^(100644|100755) blob [0-9a-f]+ +(\d+)\t(.*)$/s);
    if (m) out.push({ path: m[3], size: Number(m[2]) });
  }
  return out;
}

/** Minimal ustar/pax reader: git archive writes ustar with pax headers for long names. */
export function untar(tar: Uint8Array): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  const dec = new TextDecoder();
  const str = (off: number, len: number) => {
    const s = dec.decode(tar.subarray(off, off + len));
    const nul = s.indexOf("\0");
    return nul >= 0 ? s.slice(0, nul) : s;
  };
  let at = 0;
  let paxPath: string | undefined;
  while (at + 512 <= tar.length) {
    const name = str(at, 100);
    if (!name) break; // two zero blocks end the archive
    const size = parseInt(str(at + 124, 12).trim() || "0", 8);
    const type = str(at + 156, 1) || "0";
    const prefix = str(at + 345, 155);
    const body = tar.subarray(at + 512, at + 512 + size);
    if (type === "x") {
      for (const rec of dec.decode(body).split("\n")) {
        const m = rec.match(/^\d+ path=(.*)$/);
        if (m) paxPath = m[1];
      }
    } else if (type === "0") {
      const path = paxPath ?? (prefix ? `${prefix}/${name}` : name);
      files[path] = body.slice();
      paxPath = undefined;
    } else if (type !== "g") {
      paxPath = undefined;
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}
