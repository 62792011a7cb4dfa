/**
 * FunctionRuntime: answers a web-standard Request with a function's Response.
 *
 * Calls run on the serving thread first (a postMessage round trip per request would cost most of the
 * throughput), metered with a short inline budget. A call that outgrows the budget is aborted and re-run from
 * the start on an executor Worker under the function's full timeout, and the function stays pinned to the
 * executors for PIN_MS. Re-running is safe because a guest's only effects are its response and its logs; the
 * aborted attempt's logs are dropped so each request logs once.
 */
import { CompiledFunction, execute } from "./engine.ts";
import { ExecutorPool } from "./executor_pool.ts";
import { LruMap } from "./lru.ts";
import type { CallInput, Outcome } from "./outcome.ts";
import type { FunctionLogLine, FunctionTarget, LoadModule } from "./types.ts";

export const DEFAULT_INLINE_BUDGET_MS = 10;
export const PIN_MS = 60_000;
const MODULE_CACHE_SIZE = 256;
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

export interface FunctionRuntimeOptions {
  load: LoadModule;
  onLog?: (line: FunctionLogLine) => void;
  inlineBudgetMs?: number;
  executors?: number;
}

/** Splits the request target without `new URL` (measurably cheaper on the hot path). */
function splitUrl(url: string): { path: string; query: string } {
  const scheme = url.indexOf("://");
  const pathStart = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  if (pathStart < 0) return { path: "/", query: "" };
  const q = url.indexOf("?", pathStart);
  return q < 0 ? { path: url.slice(pathStart), query: "" } : { path: url.slice(pathStart, q), query: url.slice(q + 1) };
}

async function callInput(req: Request, ctx: { params: Record<string, string>; requestId: string }): Promise<CallInput> {
  const { path, query } = splitUrl(req.url);
  const body = req.body ? new Uint8Array(await req.arrayBuffer()) : null;
  return { method: req.method, path, query, headers: req.headers, body, params: ctx.params, requestId: ctx.requestId };
}

function errorResponse(status: number, text: string, requestId: string): Response {
  return new Response(text, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "x-request-id": requestId },
  });
}

export class FunctionRuntime {
  private readonly load: LoadModule;
  private readonly onLog?: (line: FunctionLogLine) => void;
  private readonly inlineBudgetMs: number;
  private readonly modules = new LruMap<string, Promise<CompiledFunction>>(MODULE_CACHE_SIZE);
  private readonly pinnedUntil = new LruMap<string, number>(4 * MODULE_CACHE_SIZE);
  private readonly pool: ExecutorPool;

  constructor(opts: FunctionRuntimeOptions) {
    this.load = opts.load;
    this.onLog = opts.onLog;
    this.inlineBudgetMs = opts.inlineBudgetMs ?? DEFAULT_INLINE_BUDGET_MS;
    this.pool = new ExecutorPool(Math.max(1, opts.executors ?? 2));
  }

  async invoke(
    target: FunctionTarget,
    req: Request,
    ctx: { params: Record<string, string>; requestId: string },
  ): Promise<Response> {
    const input = await callInput(req, ctx);
    let fn: CompiledFunction;
    try {
      fn = await this.compiled(target.key);
    } catch (e) {
      const text = `could not load module ${target.key}: ${e instanceof Error ? e.message : String(e)}`;
      this.log(target, ctx.requestId, [{ stream: "trap", text }]);
      return errorResponse(500, `function ${target.name} failed (request ${ctx.requestId})`, ctx.requestId);
    }
    const outcome = await this.run(fn, target, input);
    if (outcome.kind === "budget") throw new Error("unreachable: budget outcome escaped the runtime");
    this.log(target, ctx.requestId, outcome.logs);
    return this.toResponse(outcome, target, ctx.requestId);
  }

  close(): Promise<void> {
    this.pool.close();
    return Promise.resolve();
  }

  private run(fn: CompiledFunction, target: FunctionTarget, input: CallInput): Outcome | Promise<Outcome> {
    const timeoutMs = target.limits.timeoutMs;
    if (fn.metered && !this.isPinned(target.key)) {
      const budgetLimited = this.inlineBudgetMs < timeoutMs;
      const deadline = performance.now() + Math.min(this.inlineBudgetMs, timeoutMs);
      const outcome = execute(fn, target, input, deadline, budgetLimited);
      if (outcome.kind !== "budget") return outcome;
      this.pinnedUntil.set(target.key, performance.now() + PIN_MS);
    }
    return this.pool.run({ key: fn.key, bytes: fn.bytes, name: target.name, call: target.call, timeoutMs, input });
  }

  private isPinned(key: string): boolean {
    const until = this.pinnedUntil.get(key);
    if (until === undefined) return false;
    if (performance.now() < until) return true;
    this.pinnedUntil.delete(key);
    return false;
  }

  private compiled(key: string): Promise<CompiledFunction> {
    let p = this.modules.get(key);
    if (!p) {
      p = this.load(key).then((bytes) => CompiledFunction.compile(key, bytes));
      p.catch(() => this.modules.delete(key)); // a failed load is retried on the next request
      this.modules.set(key, p);
    }
    return p;
  }

  private log(target: FunctionTarget, requestId: string, logs: { stream: FunctionLogLine["stream"]; text: string }[]) {
    if (!this.onLog) return;
    for (const l of logs) {
      try {
        this.onLog({ fn: target.name, requestId, stream: l.stream, text: l.text });
      } catch {
        // a failing log sink must not fail the request
      }
    }
  }

  private toResponse(outcome: Exclude<Outcome, { kind: "budget" }>, target: FunctionTarget, id: string): Response {
    const name = target.name;
    if (outcome.kind === "error") {
      switch (outcome.reason) {
        case "timeout":
          return errorResponse(
            504,
            `function ${name} timed out after ${target.limits.timeoutMs}ms (request ${id})`,
            id,
          );
        case "bad-output":
          return errorResponse(502, `function ${name} sent an invalid response (request ${id})`, id);
        case "misconfigured":
          return errorResponse(500, `function ${name} cannot run: ${outcome.message} (request ${id})`, id);
        default:
          return errorResponse(500, `function ${name} failed (request ${id})`, id);
      }
    }
    try {
      if (outcome.status < 200 || outcome.status > 599) throw new RangeError(`status ${outcome.status} out of range`);
      const body = NULL_BODY_STATUS.has(outcome.status) ? null : outcome.body as Uint8Array<ArrayBuffer> | null;
      return new Response(body, { status: outcome.status, headers: outcome.headers });
    } catch (e) {
      const text = `invalid response: ${e instanceof Error ? e.message : String(e)}`;
      this.log(target, id, [{ stream: "trap", text }]);
      return errorResponse(502, `function ${name} sent an invalid response (request ${id})`, id);
    }
  }
}
