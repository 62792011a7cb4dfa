/**
 * A helper process: work that loads big code (the AssemblyScript compiler with binaryen, ~275 MB) or can run away (a
 * YAML parse) runs in a child `tau` process rather than a Worker thread. A Worker's memory is not given back when it
 * ends (its thread's malloc arenas stay: a node that built once sat ~100-160 MB above one that never did, and
 * malloc_trim did not help); a process's is, all of it, when it exits. The child starts with the first call, is
 * retired after `idleMs` without work (runtime/idle_timer.ts), and a crash, a timeout or the node's shutdown fails
 * only the calls it was running; the next call starts a fresh one.
 *
 * The child is `tau __helper <role>` (runtime/helper/child.ts), speaking runtime/frames.ts on stdin/stdout.
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { TauError } from "../errors.ts";
import { IdleTimer } from "../idle_timer.ts";
import { encodeFrame, readFrames } from "../frames.ts";
import { HELPER_COMMAND, type HelperReply, type HelperRequest, type HelperRole, MAX_HELPER_FRAME } from "./protocol.ts";

type Pending<Res> = { resolve: (r: Res) => void; reject: (e: Error) => void; timer?: ReturnType<typeof setTimeout> };

interface Running {
  proc: Deno.ChildProcess;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  /** The child's last lines on stderr: the detail of a crash. */
  stderr: string[];
}

export interface HelperOptions {
  role: HelperRole;
  /** What it is, for errors: "the wasm compiler". */
  what: string;
  idleMs: number;
  /** A call running longer than this kills the child and fails every call it had. */
  timeoutMs?: number;
  /** The hint of errors raised here (crash, timeout, shutdown). */
  hint: string;
}

/** The command line that runs `tau __helper <role>`, from a source checkout or from a `deno compile` binary. */
export function helperCommand(role: HelperRole): { cmd: string; args: string[] } {
  if (Deno.build.standalone) return { cmd: Deno.execPath(), args: [HELPER_COMMAND, role] };
  const root = new URL("../../", import.meta.url);
  return {
    cmd: Deno.execPath(),
    args: [
      "run",
      "-A",
      "--quiet",
      "--config",
      fromFileUrl(new URL("deno.json", root)),
      fromFileUrl(new URL("main.ts", root)),
      HELPER_COMMAND,
      role,
    ],
  };
}

export class HelperProcess<Req, Res> {
  #running?: Running;
  #pending = new Map<number, Pending<Res>>();
  #nextId = 1;
  #idle: IdleTimer;

  constructor(private readonly opts: HelperOptions) {
    this.#idle = new IdleTimer(opts.idleMs, () => {
      if (this.#pending.size === 0) this.#stop(null);
    });
  }

  /** Whether the child is running (or starting) now. */
  get loaded(): boolean {
    return this.#running !== undefined;
  }

  /** The child's pid while it runs (tests look at it). */
  get pid(): number | undefined {
    return this.#running?.proc.pid;
  }

  call(req: Req): Promise<Res> {
    const running = this.#running ?? this.#start();
    this.#idle.busy();
    const id = this.#nextId++;
    return new Promise<Res>((resolve, reject) => {
      const p: Pending<Res> = { resolve, reject };
      if (this.opts.timeoutMs !== undefined) {
        const s = this.opts.timeoutMs / 1000;
        p.timer = setTimeout(() => this.#stop(`${this.opts.what} took longer than ${s} s`), this.opts.timeoutMs);
      }
      this.#pending.set(id, p);
      // A write fails only when the child's stdin is gone, i.e. the child exited or is exiting: #readReplies then
      // sees its stdout end and fails the pending calls with how it died, which says more than "broken pipe".
      running.writer.write(encodeFrame({ id, req } satisfies HelperRequest<Req>)).catch(() => {});
    });
  }

  close(): void {
    this.#idle.stop();
    this.#stop("the node is shutting down");
  }

  #start(): Running {
    const { cmd, args } = helperCommand(this.opts.role);
    const proc = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
    const running: Running = { proc, writer: proc.stdin.getWriter(), stderr: [] };
    this.#running = running;
    void this.#readReplies(running);
    void this.#keepStderr(running);
    return running;
  }

  async #readReplies(running: Running): Promise<void> {
    let broken = "";
    try {
      for await (const frame of readFrames(running.proc.stdout, MAX_HELPER_FRAME)) {
        const reply = frame as HelperReply<Res>;
        const p = this.#pending.get(reply.id);
        if (!p) continue;
        this.#pending.delete(reply.id);
        clearTimeout(p.timer);
        if (this.#pending.size === 0) this.#idle.idle();
        if (reply.ok) p.resolve(reply.result);
        else p.reject(new TauError(reply.error.message, { hint: reply.error.hint, detail: reply.error.detail }));
      }
    } catch (err) {
      broken = (err as Error).message;
    }
    const status = await running.proc.status;
    if (this.#running !== running) return; // retired or stopped on purpose: nothing was pending
    const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
    const last = running.stderr.at(-1);
    this.#stop(`${this.opts.what} crashed: it ${how}${last ? `: ${last}` : broken ? `: ${broken}` : ""}`);
  }

  async #keepStderr(running: Running): Promise<void> {
    const lines = running.proc.stderr.pipeThrough(new TextDecoderStream());
    let rest = "";
    try {
      for await (const text of lines) {
        const parts = (rest + text).split("\n");
        rest = parts.pop() ?? "";
        running.stderr.push(...parts.filter((l) => l.trim() !== ""));
        running.stderr.splice(0, Math.max(0, running.stderr.length - 20));
      }
    } catch { /* the child is gone */ }
    if (rest.trim()) running.stderr.push(rest);
  }

  /** Ends the child; with a message, every pending call fails with it (null: retired while idle). */
  #stop(message: string | null): void {
    const running = this.#running;
    this.#running = undefined;
    if (running) {
      running.writer.close().catch(() => {});
      // A child stuck in a call (a runaway parse) does not read stdin; only a kill stops it.
      if (this.#pending.size > 0 || message) {
        try {
          running.proc.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    }
    const detail = running?.stderr.join("\n") || undefined;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new TauError(message ?? `${this.opts.what} was stopped`, { hint: this.opts.hint, detail }));
    }
    this.#pending.clear();
  }
}
