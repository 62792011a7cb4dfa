/**
 * What a process and its descendants hold, from Linux's /proc: PSS (each shared page divided among the processes
 * that map it: what the machine pays for this one), RSS and private (USS: pages no other process maps, the part that
 * does not move when other processes come and go). Used by the node's memory report (GET /api/memory, `tau memory`)
 * and by `deno task bench memory`, which reads a node from outside. Elsewhere than Linux every figure is undefined.
 */

export interface ProcessMemory {
  pid: number;
  /** What the process is: "node", "helper build", "helper parse", "git", or its command name. */
  kind: string;
  pssBytes: number;
  rssBytes: number;
  privateBytes: number;
}

export interface MemoryTree {
  /** The process itself, alone. */
  self: ProcessMemory;
  /** Every descendant (helpers, git, containers), parents before their children. */
  children: ProcessMemory[];
  /** PSS of the process and every descendant: what the whole costs the machine. */
  totalPssBytes: number;
}

const KB = 1024;

/** The process's memory from /proc/<pid>/smaps_rollup, or undefined if it is gone (or this is not Linux). */
export async function processMemory(pid: number, kind?: string): Promise<ProcessMemory | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`);
  } catch {
    return undefined;
  }
  const field = (name: string) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0) * KB;
  return {
    pid,
    kind: kind ?? await processKind(pid),
    pssBytes: field("Pss"),
    rssBytes: field("Rss"),
    privateBytes: field("Private_Clean") + field("Private_Dirty"),
  };
}

/** The process with all its descendants; undefined if it is gone or this is not Linux. */
export async function memoryTree(pid: number, selfKind = "node"): Promise<MemoryTree | undefined> {
  const self = await processMemory(pid, selfKind);
  if (!self) return undefined;
  const children: ProcessMemory[] = [];
  // Bounded: a process tree deeper than this is not one tau made.
  const queue = await childPids(pid);
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    const m = await processMemory(queue[i]);
    if (!m) continue; // exited while we looked
    children.push(m);
    queue.push(...await childPids(queue[i]));
  }
  return { self, children, totalPssBytes: children.reduce((s, c) => s + c.pssBytes, self.pssBytes) };
}

async function childPids(pid: number): Promise<number[]> {
  const out: number[] = [];
  try {
    for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
      const list = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/children`).catch(() => "");
      for (const s of list.split(" ")) if (s.trim()) out.push(Number(s));
    }
  } catch { /* gone */ }
  return out;
}

/** A tau helper (`tau __helper <role>`) by its role, git by its name, anything else by its command name. */
async function processKind(pid: number): Promise<string> {
  const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "")).split("\0");
  const helper = argv.indexOf("__helper");
  if (helper >= 0 && argv[helper + 1]) return `helper ${argv[helper + 1]}`;
  const comm = (await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "")).trim();
  return comm.startsWith("git") ? "git" : comm || "unknown";
}

/** Bytes as MiB with one decimal, for reports. */
export function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MB`;
}
