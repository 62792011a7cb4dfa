/**
 * FunctionRuntime: answers a web-standard Request with a function's Response.
 *
 * Calls run on the serving thread first (a postMessage round trip per request would cost most of the
 * throughput), metered with a short inline budget. A call that outgrows the budget is aborted and re-run from
 * the start on an executor Worker under the function's full timeout; after STRIKES_TO_PIN overruns the function
 * stays pinned to the executors for PIN_MS, and after PROJECT_STRIKES_TO_PIN overruns so does every function of its
 * project. A module's first call gets a larger budget (it pays for lazy compilation) and never counts as an overrun
 * of the function (it does of the project). Re-running is safe because a guest's only effects are its response and
 * its logs; the aborted attempt's logs are dropped so each request logs once.
 *
 * Only modules whose metering proof allows it run inline (engine.ts, prepare.ts); a module that held the serving
 * thread far past its budget anyway (watchdog.ts) is quarantined: executors only, for good.
 */
import { CompiledFunction, execute } from "./engine.ts";
import { ExecutorPool } from "./executor_pool.ts";
import { LogRate } from "./guest_output.ts";
import { LruMap } from "./lru.ts";
import type { CallInput, Outcome } from "./outcome.ts";
import type { EventResult, FunctionLogLine, FunctionTarget, LoadModule } from "./types.ts";
import { DEFAULT_STALL_MS, ServingWatchdog, type WatchdogOptions } from "./watchdog.ts";

export const DEFAULT_INLINE_BUDGET_MS = 10;
export const PIN_MS = 60_000;
/** Inline-budget overruns within PIN_MS after which a function runs only on executors (see strike()). */
const STRIKES_TO_PIN = 3;
/** Overruns of all a project's functions within PIN_MS after which the whole project runs only on executors. */
const PROJECT_STRIKES_TO_PIN = 10;
/** Stalled overruns pin a function once they are at least one call in this many (see strike()). */
const STALLS_PER_CALL_TO_PIN = 10;
/** The first call of a module gets this many inline budgets (see run()). */
const FIRST_CALL_BUDGET_FACTOR = 5;
const MODULE_CACHE_SIZE = 256;
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
/**
 * Response headers the node owns: a guest's values for them are dropped. X-Request-Id names the node's request (on
 * every error answer); Date is Deno's; Server is nobody's to forge; the rest describe the connection, the node's.
 */
const NODE_HEADERS = new Set([
  "x-request-id",
  "date",
  "server",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "content-length",
]);

export interface FunctionRuntimeOptions {
  load: LoadModule;
  onLog?: (line: FunctionLogLine) => void;
  inlineBudgetMs?: number;
  executors?: number;
  /** Executor jobs one project may run at once (default: half the executors, at least one). */
  executorsPerProject?: number;
  /**
   * Keep one executor worker booted ahead of need, so that a call outgrowing the inline budget does not also wait
   * for a worker to boot (~80-300 ms): `true` boots it now, "after-first-use" from the first call that needed one on
   * (a node: an idle worker holds ~10 MB, which a node whose functions all run inline need not pay); unset, never.
   */
  warmExecutor?: boolean | "after-first-use";
  /** Watch the serving thread from a Worker (a node wants this); it starts with watch() or the first inline call. */
  watchdog?: WatchdogOptions;
}

export interface InvokeContext {
  params: Record<string, string>;
  requestId: string;
  /** The request's path and query (without "?"), when the caller split the URL already. */
  path?: string;
  query?: string;
}

/** Splits the request target without `new URL` (measurably cheaper on the hot path). */
function splitUrl(url: string): { path: string; query: string } {
  const scheme = url.indexOf("://");
  const pathStart = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  if (pathStart < 0) return { path: "/", query: "" };
  const q = url.indexOf("?", pathStart);
  return q < 0 ? { path: url.slice(pathStart), query: "" } : { path: url.slice(pathStart, q), query: url.slice(q + 1) };
}

/**
 * The call's input. Request headers are materialised only if the guest asks for them (a getter on the prototype:
 * an object literal with its own getter costs a closure and a fresh shape per request): copying them out of the
 * HTTP layer on every request costs more than a hello-world guest's whole run.
 */
class RequestInput implements CallInput {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly params: Record<string, string>;
  readonly requestId: string;
  readonly body: Uint8Array | null;
  // True private fields: the executor path spreads the input into a message, and a Request cannot be cloned.
  #req: Request;
  #headers?: Headers;

  constructor(req: Request, body: Uint8Array | null, ctx: InvokeContext) {
    this.#req = req;
    this.body = body;
    this.method = req.method;
    if (ctx.path !== undefined) {
      this.path = ctx.path;
      this.query = ctx.query ?? "";
    } else {
      const split = splitUrl(req.url);
      this.path = split.path;
      this.query = split.query;
    }
    this.params = ctx.params;
    this.requestId = ctx.requestId;
  }

  get headers(): Headers {
    return this.#headers ??= this.#req.headers;
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const STRING_BODY_MAX = 64 * 1024;
/** Bodies up to this size are checked for plain ASCII in JS first (String.fromCharCode.apply takes up to ~64K args). */
const ASCII_FAST_MAX = 1024;

/**
 * Deno.serve sends a string body on a faster path than the same bytes (measured: ~1.5x requests/s for a small
 * response), so small bodies that are valid UTF-8 go out as strings. Exact: valid UTF-8 re-encodes to the same bytes.
 */
function responseBody(body: Uint8Array<ArrayBuffer> | null): string | Uint8Array<ArrayBuffer> | null {
  if (!body || body.length > STRING_BODY_MAX) return body;
  if (body.length <= ASCII_FAST_MAX) {
    // Short ASCII (most small answers): one flat string without TextDecoder's op, whose fixed cost dominates here.
    let ascii = true;
    for (let i = 0; i < body.length; i++) {
      if (body[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, body as unknown as number[]);
  }
  try {
    return strictUtf8.decode(body);
  } catch {
    return body;
  }
}

/**
 * The guest's headers without the node's own. A plain record is the cheapest HeadersInit; repeated names
 * (set-cookie) need the pairs form. X-Request-Id is not added to successful answers (errors carry it): one more
 * header measured +3-5 us per SDK hello call (~30% of the runtime's part), and a guest cannot set it either way.
 */
function responseHeaders(pairs: [string, string][]): Record<string, string> | [string, string][] {
  // A function answers with the same headers call after call: the last result is reused when they are equal.
  const last = lastHeaders;
  if (last && last.pairs.length === pairs.length) {
    let same = true;
    for (let i = 0; i < pairs.length && same; i++) {
      same = pairs[i][0] === last.pairs[i][0] && pairs[i][1] === last.pairs[i][1];
    }
    if (same) return last.init;
  }
  const init = headersInit(pairs);
  lastHeaders = { pairs, init };
  return init;
}

/** The previous call's guest headers and what they became (Deno's Response does not modify its init's headers). */
let lastHeaders: { pairs: [string, string][]; init: Record<string, string> | [string, string][] } | undefined;

function headersInit(pairs: [string, string][]): Record<string, string> | [string, string][] {
  const record: Record<string, string> = {};
  let repeated = false;
  let dropped = false;
  for (const [k, v] of pairs) {
    const key = k.toLowerCase();
    if (NODE_HEADERS.has(key)) {
      dropped = true;
      continue;
    }
    if (key in record || key === "__proto__") repeated = true;
    record[key] = v;
  }
  if (!repeated) return record;
  return dropped ? pairs.filter(([k]) => !NODE_HEADERS.has(k.toLowerCase())) : pairs;
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
  private readonly ready = new LruMap<string, CompiledFunction>(MODULE_CACHE_SIZE);
  /** Overrun counts and pins, keyed by module key (a function) and by "project:" + name (a whole project). */
  private readonly strikes = new LruMap<string, { count: number; stalls: number; since: number; callsAtStart: number }>(
    4 * MODULE_CACHE_SIZE,
  );
  private readonly pinnedUntil = new LruMap<string, number>(4 * MODULE_CACHE_SIZE);
  /** Modules that held the serving thread far past their budget: executors only, for good. */
  private readonly quarantined = new Set<string>();
  private readonly quarantineFile?: string;
  private readonly logRate = new LogRate();
  private readonly pool: ExecutorPool;
  private readonly watchdog?: ServingWatchdog;
  private readonly stallMs: number;

  constructor(opts: FunctionRuntimeOptions) {
    this.load = opts.load;
    this.onLog = opts.onLog;
    this.inlineBudgetMs = opts.inlineBudgetMs ?? DEFAULT_INLINE_BUDGET_MS;
    this.pool = new ExecutorPool({ size: Math.max(1, opts.executors ?? 2), perProject: opts.executorsPerProject });
    if (opts.warmExecutor === "after-first-use") this.pool.warmAfterFirstUse();
    else if (opts.warmExecutor) this.pool.warm();
    if (opts.watchdog) this.watchdog = new ServingWatchdog(opts.watchdog);
    this.stallMs = this.watchdog?.stallMs ?? DEFAULT_STALL_MS;
    this.quarantineFile = opts.watchdog?.quarantineFile;
    if (this.quarantineFile) {
      try {
        for (const key of Deno.readTextFileSync(this.quarantineFile).split("\n")) if (key) this.quarantined.add(key);
      } catch { /* none yet */ }
    }
  }

  /**
   * Answers `req` with the function's response. Synchronous on the hot path (a bodiless request to a warm module
   * that does not suspend): no promise is made per request. `ctx.path`/`ctx.query`, when the caller has split the
   * URL already, spare splitting it again.
   */
  invoke(target: FunctionTarget, req: Request, ctx: InvokeContext): Response | Promise<Response> {
    if (req.body) return req.arrayBuffer().then((b) => this.invokeWith(target, req, ctx, new Uint8Array(b)));
    return this.invokeWith(target, req, ctx, null);
  }

  private invokeWith(
    target: FunctionTarget,
    req: Request,
    ctx: InvokeContext,
    body: Uint8Array | null,
  ): Response | Promise<Response> {
    const input = new RequestInput(req, body, ctx);
    // Warm path without an await: a resolved module is kept as itself, not only as a promise.
    const fn = this.ready.get(target.key);
    if (fn) return this.answer(fn, target, input, req, ctx.requestId);
    return this.compiled(target.key).then(
      (fn) => this.answer(fn, target, input, req, ctx.requestId),
      (e) => {
        const text = `could not load module ${target.key}: ${e instanceof Error ? e.message : String(e)}`;
        this.log(target, ctx.requestId, [{ stream: "trap", text }]);
        return errorResponse(500, `function ${target.name} failed (request ${ctx.requestId})`, ctx.requestId);
      },
    );
  }

  private answer(
    fn: CompiledFunction,
    target: FunctionTarget,
    input: CallInput,
    req: Request,
    requestId: string,
  ): Response | Promise<Response> {
    const outcome = this.run(fn, target, input, req);
    return outcome instanceof Promise
      ? outcome.then((o) => this.finish(o, target, requestId))
      : this.finish(outcome, target, requestId);
  }

  private finish(outcome: Outcome, target: FunctionTarget, requestId: string): Response {
    if (outcome.kind === "budget") throw new Error("unreachable: budget outcome escaped the runtime");
    this.log(target, requestId, outcome.logs);
    return this.toResponse(outcome, target, requestId);
  }

  /**
   * Runs the function for an event (a pubsub message, a p2p command, a cron tick, a smartop check): the same
   * limits, inline budget, executors and logs as a request, answered as data instead of a Response.
   */
  async invokeEvent(target: FunctionTarget, input: CallInput): Promise<EventResult> {
    let fn = this.ready.get(target.key);
    if (!fn) {
      try {
        fn = await this.compiled(target.key);
      } catch (e) {
        const message = `could not load module ${target.key}: ${e instanceof Error ? e.message : String(e)}`;
        this.log(target, input.requestId, [{ stream: "trap", text: message }]);
        return { ok: false, reason: "misconfigured", message };
      }
    }
    const outcome = await this.run(fn, target, input, undefined);
    if (outcome.kind === "budget") throw new Error("unreachable: budget outcome escaped the runtime");
    this.log(target, input.requestId, outcome.logs);
    if (outcome.kind === "error") return { ok: false, reason: outcome.reason, message: outcome.message };
    const body = outcome.body ?? (outcome.text ? new TextEncoder().encode(outcome.text) : new Uint8Array(0));
    return { ok: true, status: outcome.status, headers: outcome.headers, body };
  }

  /**
   * Loads and compiles modules before their first request (a deploy calls this before its flip, other nodes on the
   * flip): the first request then finds them compiled. Failures are left for that request to report.
   */
  async prepare(keys: Iterable<string>): Promise<void> {
    const pending: Promise<unknown>[] = [];
    for (const key of new Set(keys)) {
      if (!this.ready.get(key)) pending.push(this.compiled(key).catch(() => {}));
    }
    await Promise.all(pending);
  }

  /** Starts the serving thread's watchdog now (a function is about to be served), if there is one. */
  watch(): void {
    this.watchdog?.watch();
  }

  /** The Workers this runtime has started (for the node's memory report). */
  get workers(): { executors: number; watchdog: boolean } {
    return { executors: this.pool.workers, watchdog: this.watchdog?.started ?? false };
  }

  close(): Promise<void> {
    this.pool.close();
    this.watchdog?.close();
    return Promise.resolve();
  }

  private run(
    fn: CompiledFunction,
    target: FunctionTarget,
    input: CallInput,
    req: { signal: AbortSignal } | undefined,
  ): Outcome | Promise<Outcome> {
    // A WAGI guest reads its listed secrets as environment variables: looked up before the call (one await, only for
    // functions that list secrets), carried in the input, which no log ever prints.
    if (target.secrets && input.env === undefined && fn.mode(target.call) === "wagi") {
      return this.secretEnv(target, input).then((env) => {
        input.env = env;
        return this.run(fn, target, input, req);
      });
    }
    const timeoutMs = target.limits.timeoutMs;
    const project = target.project ?? target.key;
    if (fn.inline && !this.isPinned(target.key, project)) {
      // A module's first call also pays for V8's lazy compilation of every function it touches: give it a larger
      // budget, and do not hold an overrun on that call against the function (the next call runs compiled code).
      const first = fn.inlineCalls++ === 0;
      const budget = first ? this.inlineBudgetMs * FIRST_CALL_BUDGET_FACTOR : this.inlineBudgetMs;
      const budgetLimited = budget < timeoutMs;
      const start = performance.now();
      const deadline = start + Math.min(budget, timeoutMs);
      const watchdog = this.watchdog;
      const watchId = watchdog ? (fn.watchId ??= watchdog.guestId(fn.key, target.name)) : 0;
      const after = (outcome: Outcome, held: number): Outcome | Promise<Outcome> => {
        if (held > this.stallMs) this.quarantine(fn.key, target.name, held);
        if (outcome.kind !== "budget") return outcome;
        // An attempt stopped before an effect counts toward pinning the function (it would stop every time), not
        // against its project: it was not using up the thread.
        if (!first && this.strike(target.key, fn.inlineCalls, outcome.stalled)) {
          this.pinnedUntil.set(target.key, performance.now() + PIN_MS);
        }
        if (
          !outcome.stalled && !outcome.effect && this.strike(`project:${project}`, 0, false, PROJECT_STRIKES_TO_PIN)
        ) {
          this.pinnedUntil.set(`project:${project}`, performance.now() + PIN_MS);
        }
        return this.onExecutor(fn, target, input, req);
      };
      if (fn.hostCalls.length === 0) {
        // The hot path: one synchronous slice on the serving thread.
        if (watchdog) watchdog.enter(watchId);
        let outcome: Outcome;
        try {
          outcome = execute(fn, target, input, deadline, budgetLimited, start, { self: target.self }) as Outcome;
        } finally {
          watchdog?.leave();
        }
        return after(outcome, performance.now() - start);
      }
      // A module with host calls holds the thread in slices, between its waits: the watchdog sees each slice, and
      // the time it held the thread is what the stall check counts.
      const slices = {
        held: 0,
        at: 0,
        enter() {
          watchdog?.enter(watchId);
          this.at = performance.now();
        },
        leave() {
          watchdog?.leave();
          this.held += performance.now() - this.at;
        },
      };
      const outcome = execute(fn, target, input, deadline, budgetLimited, start, {
        self: target.self,
        host: target.host,
        inline: true,
        timeoutAt: start + timeoutMs,
        slices,
      });
      return outcome instanceof Promise ? outcome.then((o) => after(o, slices.held)) : after(outcome, slices.held);
    }
    return this.onExecutor(fn, target, input, req);
  }

  private onExecutor(
    fn: CompiledFunction,
    target: FunctionTarget,
    input: CallInput,
    req: { signal: AbortSignal } | undefined,
  ): Promise<Outcome> {
    const project = target.project ?? target.key;
    // req.signal only here: Deno creates it on first access, which the inline path need not pay for.
    return this.pool.run(
      {
        key: fn.key,
        bytes: fn.bytes,
        name: target.name,
        call: target.call,
        timeoutMs: target.limits.timeoutMs,
        input,
        project,
        host: fn.hostCalls.length ? target.host : undefined,
        self: target.self,
      },
      req?.signal,
    );
  }

  /**
   * Counts an inline-budget overrun; true when the function (or project) has overrun often enough to be pinned to
   * executors. One overrun is not enough: the budget is wall-clock time, and a descheduled thread or a GC pause can
   * push a fast call past it. A function that really runs long overruns every time and is pinned after a few calls.
   * A *stalled* overrun (the time went in one unmetered stretch) counts only when it is not rare: under sustained
   * load a WAGI hello measured ~11 stalls (GC, descheduling: 10-50 ms) in 30,000 calls, and pinning it for those
   * cut its throughput by ~40%; a guest that stalls on purpose (page faults) stalls on every call.
   */
  private strike(key: string, calls: number, stalled: boolean, limit = STRIKES_TO_PIN): boolean {
    const now = performance.now();
    let s = this.strikes.get(key);
    if (!s || now - s.since > PIN_MS) {
      s = { count: 0, stalls: 0, since: now, callsAtStart: calls };
      this.strikes.set(key, s);
    }
    if (stalled) s.stalls++;
    else s.count++;
    const stalledOften = s.stalls >= limit && s.stalls * STALLS_PER_CALL_TO_PIN >= calls - s.callsAtStart;
    if (s.count < limit && !stalledOften) return false;
    this.strikes.delete(key);
    return true;
  }

  /** A module that held the serving thread for `took` ms despite its metering never runs inline again. */
  private quarantine(key: string, name: string, took: number) {
    if (this.quarantined.has(key)) return;
    this.quarantined.add(key);
    const text = `held the serving thread for ${took.toFixed(0)} ms; it runs only on executor workers from now on`;
    this.log({ key, name }, "-", [{ stream: "trap", text }]);
    console.error(`tau: function ${name} (module ${key}) ${text}`);
    if (this.quarantineFile) {
      try {
        Deno.writeTextFileSync(this.quarantineFile, key + "\n", { append: true });
      } catch { /* kept in memory all the same */ }
    }
  }

  private isPinned(key: string, project: string): boolean {
    if (this.pinnedUntil.size === 0 && this.quarantined.size === 0) return false; // the common case, one check
    return this.quarantined.has(key) || this.pinnedNow(key) || this.pinnedNow(`project:${project}`);
  }

  private pinnedNow(key: string): boolean {
    const until = this.pinnedUntil.get(key);
    if (until === undefined) return false;
    if (performance.now() < until) return true;
    this.pinnedUntil.delete(key);
    return false;
  }

  private compiled(key: string): Promise<CompiledFunction> {
    let p = this.modules.get(key);
    if (!p) {
      p = this.load(key).then(async (bytes) => {
        // Async compile, not `new WebAssembly.Module`: V8 compiles on background threads instead of lazily on the
        // first call (measured on a 97 KB module whose first call touches every function: 4-6.5 ms vs 9-14.5 ms).
        const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
        const fn = new CompiledFunction(key, bytes, module);
        this.ready.set(key, fn);
        return fn;
      });
      p.catch(() => this.modules.delete(key)); // a failed load is retried on the next request
      this.modules.set(key, p);
    }
    return p;
  }

  /** The listed secrets that are set, by name; each one that is not gets a line in the function's log. */
  private async secretEnv(target: FunctionTarget, input: CallInput): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    const logs: { stream: "stderr"; text: string }[] = [];
    for (const name of target.secrets ?? []) {
      try {
        if (!target.host?.secrets) throw new Error("this node keeps no secrets");
        env[name] = new TextDecoder().decode(await target.host.secrets.get(name));
      } catch (err) {
        logs.push({ stream: "stderr", text: `host: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
    this.log(target, input.requestId, logs);
    return env;
  }

  private log(
    target: { key: string; name: string; project?: string },
    requestId: string,
    logs: { stream: FunctionLogLine["stream"]; text: string }[],
  ) {
    if (!this.onLog || logs.length === 0) return;
    const { kept, markers } = this.logRate.admit(target.key, target.name, logs);
    try {
      for (const m of markers) this.onLog({ fn: m.name, requestId: "-", stream: "trap", text: m.text });
      for (const l of kept) {
        this.onLog({ fn: target.name, project: target.project, requestId, stream: l.stream, text: l.text });
      }
    } catch {
      // a failing log sink must not fail the request
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
        case "busy":
          return errorResponse(503, `function ${name} is busy: ${outcome.message} (request ${id})`, id);
        case "cancelled":
          return errorResponse(503, `function ${name} was cancelled: the client went away (request ${id})`, id);
        default:
          return errorResponse(500, `function ${name} failed (request ${id})`, id);
      }
    }
    try {
      if (outcome.status < 200 || outcome.status > 599) throw new RangeError(`status ${outcome.status} out of range`);
      const body = NULL_BODY_STATUS.has(outcome.status)
        ? null
        : outcome.body === null && outcome.text
        ? outcome.text
        : responseBody(outcome.body as Uint8Array<ArrayBuffer> | null);
      return new Response(body, {
        status: outcome.status,
        headers: responseHeaders(outcome.headers),
      });
    } catch (e) {
      const text = `invalid response: ${e instanceof Error ? e.message : String(e)}`;
      this.log(target, id, [{ stream: "trap", text }]);
      return errorResponse(502, `function ${name} sent an invalid response (request ${id})`, id);
    }
  }
}
