/**
 * The node's memory, by part (GET /api/memory, `tau memory`): the node process alone, its main isolate's V8 heap,
 * the Workers inside it (threads: their memory is in the node's figure), and each child process (the build and
 * config-parse helpers of monkey, git processes of git hosting, containers' processes) by what it is.
 * PSS counts each shared page once across processes, so the total is what the node costs the machine.
 */
import { memoryTree, mib as mb, type ProcessMemory } from "../runtime/memory.ts";

export interface NodeMemory {
  pid: number;
  /** The node and every descendant; undefined where /proc is not there (not Linux). */
  totalPssBytes?: number;
  node?: ProcessMemory;
  /** The main isolate's V8 heap (Deno.memoryUsage). */
  heap: { usedBytes: number; totalBytes: number; externalBytes: number };
  /** Workers running inside the node process. */
  workers: { executors: number; watchdog: boolean };
  children: ProcessMemory[];
  /** Times the node gave freed allocator memory back to the OS, once quiet after work (runtime/idle_trim.ts). */
  trims: number;
}

export async function nodeMemory(workers: () => NodeMemory["workers"], trims = 0): Promise<NodeMemory> {
  const tree = await memoryTree(Deno.pid);
  const m = Deno.memoryUsage();
  return {
    pid: Deno.pid,
    totalPssBytes: tree?.totalPssBytes,
    node: tree?.self,
    heap: { usedBytes: m.heapUsed, totalBytes: m.heapTotal, externalBytes: m.external },
    workers: workers(),
    children: tree?.children ?? [],
    trims,
  };
}

/** Which service a child process serves, for the report. */
export function childRole(kind: string): string {
  if (kind === "helper build") return "monkey: the wasm compiler (AssemblyScript, binaryen)";
  if (kind === "helper parse") return "monkey: the config parser";
  if (kind === "git") return "git hosting";
  return "substrate: containers and other children";
}

/** The report as lines, for `tau memory`. */
export function formatMemory(m: NodeMemory): string[] {
  const lines: string[] = [];
  if (m.node) {
    lines.push(
      `node (pid ${m.pid}): ${mb(m.node.pssBytes)} PSS (private ${mb(m.node.privateBytes)}, RSS ${
        mb(m.node.rssBytes)
      })`,
    );
  } else {
    lines.push(`node (pid ${m.pid}): process figures need Linux's /proc`);
  }
  lines.push(
    `  main isolate heap: ${mb(m.heap.usedBytes)} used of ${mb(m.heap.totalBytes)}, external ${
      mb(m.heap.externalBytes)
    }`,
  );
  const workers = [
    ...(m.workers.watchdog ? ["the serving thread's watchdog"] : []),
    ...(m.workers.executors ? [`${m.workers.executors} function executor${m.workers.executors > 1 ? "s" : ""}`] : []),
  ];
  lines.push(`  workers in the node process: ${workers.length ? workers.join(", ") : "none"}`);
  lines.push(`  freed memory given back to the OS when quiet after work: ${m.trims} time${m.trims === 1 ? "" : "s"}`);
  for (const c of m.children) lines.push(`${c.kind} (pid ${c.pid}, ${childRole(c.kind)}): ${mb(c.pssBytes)} PSS`);
  if (m.totalPssBytes !== undefined) lines.push(`total: ${mb(m.totalPssBytes)} PSS`);
  return lines;
}
