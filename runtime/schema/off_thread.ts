/**
 * Config parsing off the serving thread. The YAML parser runs at ~1-4 ms per KiB here (a 32 MB file blocked every
 * request for ~80 s when it ran inline), so a build hands its config tree to a Worker and awaits the result.
 * Size caps (limits.ts) bound the work; a parse that still runs past PARSE_TIMEOUT_MS is stopped by terminating
 * the worker, and the next parse starts a fresh one. The worker starts with the first parse and is retired when
 * idle (runtime/idle_timer.ts).
 */
import { TauError } from "../errors.ts";
import { IdleTimer, workerIdleMs } from "../idle_timer.ts";
import type { ParseResult } from "./types.ts";

export interface ParseRequest {
  id: number;
  files: Record<string, string>;
}

export type ParseReply = { id: number; ok: true; result: ParseResult } | { id: number; ok: false; error: string };

/** Far above what the size caps allow (2 MiB of YAML parses in well under 10 s), so only a parser bug hits it. */
export const PARSE_TIMEOUT_MS = 30_000;

type Pending = { resolve: (r: ParseResult) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> };

export class ConfigParser {
  #worker?: Worker;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #timeoutMs: number;
  #idle: IdleTimer;

  constructor(opts: { timeoutMs?: number; idleMs?: number } = {}) {
    this.#timeoutMs = opts.timeoutMs ?? PARSE_TIMEOUT_MS;
    this.#idle = new IdleTimer(opts.idleMs ?? workerIdleMs(), () => {
      if (this.#pending.size > 0) return;
      this.#worker?.terminate();
      this.#worker = undefined;
    });
  }

  parse(files: Record<string, string>): Promise<ParseResult> {
    const worker = this.#ensureWorker();
    this.#idle.busy();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#restart(`parsing the config took longer than ${this.#timeoutMs / 1000} s`);
      }, this.#timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      worker.postMessage({ id, files } satisfies ParseRequest);
    });
  }

  /** Whether the worker is loaded (or loading) now. */
  get loaded(): boolean {
    return this.#worker !== undefined;
  }

  close(): void {
    this.#idle.stop();
    this.#restart("the node is shutting down");
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL("./parse_worker.ts", import.meta.url).href, { type: "module" });
    worker.onmessage = (e: MessageEvent<ParseReply>) => {
      const reply = e.data;
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#pending.delete(reply.id);
      clearTimeout(p.timer);
      if (this.#pending.size === 0) this.#idle.idle();
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new TauError(`cannot read the config: ${reply.error}`));
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#restart(`the config parser crashed: ${e.message}`);
    };
    this.#worker = worker;
    return worker;
  }

  /** Stops the worker (a runaway parse cannot be interrupted otherwise) and fails what was waiting on it. */
  #restart(message: string): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new TauError(message, { hint: "make the config smaller or simpler, then push again" }));
    }
    this.#pending.clear();
  }
}
