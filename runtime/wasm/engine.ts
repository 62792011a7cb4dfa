/**
 * Runs one call of a prepared module, synchronously, on whatever thread calls it (the serving thread for the
 * inline attempt, an executor Worker otherwise). Everything the guest produced comes back as an Outcome.
 */
import { assemblyScriptEnv, GuestAbort, GuestMemory, SDK_MODULE, SdkCall, sdkImports } from "./abi_sdk.ts";
import type { HostServices, SelfInfo } from "./host/services.ts";
import { TAUBYTE_HOST_CALLS, TAUBYTE_MODULE, type TaubyteCall, TaubyteEvent, taubyteImports } from "./taubyte/mod.ts";
import { BadResponse, CallLog } from "./guest_output.ts";
import {
  DeadlineExceeded,
  EffectNeedsExecutor,
  meter,
  METER_MODULE,
  METER_TICK,
  METERING_VERSION,
  readProof,
  type Slices,
} from "./meter.ts";
import { MAX_RESPONSE_BYTES, type Outcome, OutputTooLarge } from "./outcome.ts";
import type { CallInput } from "./outcome.ts";
import { cgiEnviron, CgiStdout, parseCgiOutput } from "./wagi.ts";
import { InstanceSnapshot, type ResetPlan } from "./instance_reset.ts";
import { ProcExit, WASI_MODULE, type WasiOptions, WasiShim, wasiUnknown } from "./wasi.ts";

export interface RunTarget {
  name: string;
  call?: string;
}

type Providers = Record<string, Record<string, unknown>>;

/** What a call may reach beyond its request: the services its deployment binds and who it is (Taubyte's `self`). */
export interface CallEnv {
  host?: HostServices;
  self?: SelfInfo;
  /** On the serving thread: effects stop the attempt (EffectNeedsExecutor), waits lift the budget (Meter.resume). */
  inline?: boolean;
  /** The deadline past which the call has timed out (default: the deadline, i.e. not budget-limited). */
  timeoutAt?: number;
  /** Told when the call starts and stops holding the thread (it stops at every wait in a host call). */
  slices?: Slices;
}

const NO_EVENT = new TaubyteEvent(0);
const NO_SELF: SelfInfo = { project: "", application: "", id: "", branch: "", commit: "" };

// deno-lint-ignore no-explicit-any
const promising = (WebAssembly as any).promising as <F>(f: F) => (...a: unknown[]) => Promise<unknown>;

/**
 * A warm SDK instance whose memory grew past this (or past its initial size, if that is larger) is dropped after its
 * call, so one big request does not keep its memory for good (the next call instantiates afresh). Inline functions
 * have at most 64 MiB (prepare.ts), so this mostly matters on executors, where execution.memory may be up to 4 GiB.
 */
export const WARM_MEMORY_MAX_BYTES = 32 * 1024 * 1024;

/** Thrown when a module needs something tau does not provide; answered as a misconfiguration, not a trap. */
class Misconfigured extends Error {}

/** Owners with a warm instance of one module at most (the oldest is dropped): same bytes deployed many times. */
const MAX_WARM_OWNERS = 16;

/** Who a warm instance belongs to: the function (project and resource id) and the export it calls. */
function ownerOf(target: RunTarget, env: CallEnv): string {
  const self = env.self;
  return self ? `${self.project}\0${self.id}\0${target.call}` : `\0${target.name}\0${target.call}`;
}

/** A compiled module plus, in SDK mode, its warm instance (discarded after any trap or timeout). */
export class CompiledFunction {
  readonly exportNames: Set<string>;
  readonly imports: WebAssembly.ModuleImportDescriptor[];
  /**
   * May run on the serving thread: prepared by this version of the metering, and cheap enough outside it (see
   * INLINE_LIMITS in prepare.ts). Anything else (an older or missing proof) runs only on executors, which can be
   * terminated.
   */
  readonly inline: boolean;
  readonly notInlineWhy?: string;
  /**
   * The host-service calls it imports (databases, storages, network...): they suspend (JSPI), so its exports are
   * entered through WebAssembly.promising and answer with a Promise. Inline, its reads run on the serving thread;
   * its first effect sends the call to an executor (taubyte/mod.ts).
   */
  readonly hostCalls: string[];
  /** It imports from `taubyte/sdk`: its export takes the event id. */
  readonly speaksTaubyte: boolean;
  /**
   * SDK mode: the warm instances, one per owner (ownerOf: the function's project, id and export). The same module
   * bytes deployed as two functions (a library with one export per function, or one module in two projects) share
   * this CompiledFunction, but never an instance: each keeps its own export and its own guest memory.
   */
  readonly warmBy = new Map<string, WarmSdkInstance>();
  /** The instance of the last call (the common case: one owner), checked before the map. */
  warm?: WarmSdkInstance;
  /** WAGI mode: the instance kept between calls, reset after each (instance_reset.ts). */
  wagi?: WagiInstance;
  /** How prepareModule said an instance can be reset (from the proof); none: a fresh instance per WAGI call. */
  readonly resetPlan?: ResetPlan;
  /** Calls attempted on the serving thread; the runtime treats the first one differently (lazy compilation). */
  inlineCalls = 0;
  /** This module's id at the serving thread's watchdog, once it has run inline. */
  watchId?: number;

  constructor(readonly key: string, readonly bytes: Uint8Array, readonly module: WebAssembly.Module) {
    this.exportNames = new Set(
      WebAssembly.Module.exports(module).filter((e) => e.kind === "function").map((e) => e.name),
    );
    this.imports = WebAssembly.Module.imports(module);
    this.hostCalls = this.imports.filter((d) => d.module === TAUBYTE_MODULE && TAUBYTE_HOST_CALLS.has(d.name))
      .map((d) => d.name);
    this.speaksTaubyte = this.imports.some((d) => d.module === TAUBYTE_MODULE);
    const proof = readProof(module);
    this.resetPlan = proof?.reset;
    this.inline = proof?.version === METERING_VERSION && proof.inline;
    if (!this.inline) {
      this.notInlineWhy = !proof
        ? "not prepared by tau's metering"
        : proof.version !== METERING_VERSION
        ? `prepared by metering version ${proof.version}, this node runs ${METERING_VERSION}: rebuild it`
        : proof.why;
    }
  }

  /** `new WebAssembly.Module` compiles lazily (functions are compiled on first call), which keeps cold starts cheap. */
  static compile(key: string, bytes: Uint8Array): CompiledFunction {
    return new CompiledFunction(key, bytes, new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>));
  }

  mode(call?: string): "sdk" | "wagi" | string {
    // `call: _start` names a WASI command: WAGI, as Spin's wagi executor defaults its entrypoint to `_start`.
    if (call === "_start" && this.exportNames.has("_start")) return "wagi";
    if (call && this.exportNames.has(call)) return "sdk";
    if (this.exportNames.has("_start")) return "wagi";
    return call
      ? `module exports neither "${call}" (execution.call) nor "_start" (a WASI command)`
      : `module has no "_start" export and the function sets no execution.call`;
  }

  instantiate(providers: Providers): WebAssembly.Instance {
    const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
    for (const d of this.imports) {
      let value = providers[d.module]?.[d.name];
      if (value === undefined && d.module === WASI_MODULE && d.kind === "function") value = wasiUnknown;
      if (value === undefined || d.kind !== "function") {
        throw new Misconfigured(`module imports ${d.kind} ${d.module}.${d.name}, which tau does not provide`);
      }
      (imports[d.module] ??= {})[d.name] = value as WebAssembly.ImportValue;
    }
    return new WebAssembly.Instance(this.module, imports);
  }
}

function exportedMemory(instance: WebAssembly.Instance): WebAssembly.Memory | undefined {
  const m = instance.exports.memory;
  return m instanceof WebAssembly.Memory ? m : undefined;
}

/** SDK mode keeps one instance per module and swaps the per-call state in. */
class WarmSdkInstance {
  private readonly mem = new GuestMemory();
  private readonly entry: (eventId?: number) => unknown;
  private readonly init?: () => unknown;
  private initialized = false;
  private readonly keepBytes: number;
  /** Whether the module speaks Taubyte's ABI (imports taubyte/sdk) rather than tau's. */
  private readonly taubyte: boolean;
  private events = 0;
  /** A call is suspended in it (waiting for a host call): another call needs an instance of its own. */
  busy = false;
  /** The running call as the Taubyte ABI sees it; swapped whole for every call. */
  current: TaubyteCall;

  /**
   * Instantiation runs the module's start function, so it happens within a call (and its deadline). `suspend`:
   * the module calls host services, so its exports are entered through JSPI (and must be awaited).
   */
  constructor(
    fn: CompiledFunction,
    target: RunTarget,
    first: SdkCall,
    env: CallEnv,
    readonly suspend: boolean,
    readonly owner: string,
  ) {
    this.current = { call: first, event: new TaubyteEvent(0), host: env.host ?? {}, self: env.self ?? NO_SELF };
    const logOf = (stream: "log" | "stderr") => (b: Uint8Array) => this.current.call.log.line(stream, b);
    const wasi = new WasiShim({
      args: [target.name],
      env: {},
      stdin: null,
      stdout: logOf("log"),
      stderr: logOf("stderr"),
    });
    const instance = fn.instantiate({
      [SDK_MODULE]: sdkImports(this.mem, () => this.current.call),
      // Built only for modules that speak it: its capabilities' tables are not a cost of every cold start.
      ...(fn.speaksTaubyte ? { [TAUBYTE_MODULE]: taubyteImports(this.mem, () => this.current, suspend) } : {}),
      env: assemblyScriptEnv(this.mem, () => this.current.call.log),
      [METER_MODULE]: { [METER_TICK]: meter.tick },
      [WASI_MODULE]: wasi.imports(),
    });
    const memory = exportedMemory(instance);
    if (!memory) throw new Misconfigured(`module does not export its memory as "memory"`);
    this.mem.memory = wasi.memory = memory;
    const entry = instance.exports[target.call!] as (eventId?: number) => unknown;
    const init = instance.exports._initialize as (() => unknown) | undefined;
    this.entry = suspend ? promising(entry) : entry;
    if (typeof init === "function") this.init = suspend ? promising(init) : init;
    this.keepBytes = Math.max(WARM_MEMORY_MAX_BYTES, memory.buffer.byteLength);
    this.taubyte = fn.speaksTaubyte;
  }

  /** Calls the export (after `_initialize` the first time); a Promise when the module suspends. */
  run(call: SdkCall, env: CallEnv): Outcome | Promise<Outcome> {
    // A module that does not speak Taubyte's ABI never reads its event: one shared empty one, not a Map per call.
    const event = this.taubyte ? new TaubyteEvent(++this.events) : NO_EVENT;
    this.current = { call, event, host: env.host ?? {}, self: env.self ?? NO_SELF };
    // Taubyte's SDKs build reactors (TinyGo, Rust): `_initialize` sets up their runtime once, before any export.
    const enter = () => (this.taubyte ? this.entry(event.id) : this.entry());
    if (!this.suspend) {
      if (!this.initialized) this.init?.(), this.initialized = true;
      enter();
      return call.outcome();
    }
    this.busy = true;
    return (async () => {
      try {
        if (!this.initialized) await this.init?.(), this.initialized = true;
        await enter();
        return call.outcome();
      } finally {
        this.busy = false;
      }
    })();
  }

  /** Whether the instance holds more memory than a warm instance may keep (WARM_MEMORY_MAX_BYTES). */
  grewTooBig(): boolean {
    return this.mem.memory!.buffer.byteLength > this.keepBytes;
  }
}

function runSdk(
  fn: CompiledFunction,
  target: RunTarget,
  input: CallInput,
  log: CallLog,
  env: CallEnv,
): Outcome | Promise<Outcome> {
  const call = new SdkCall(input, log);
  const suspends = fn.hostCalls.length > 0;
  const owner = ownerOf(target, env);
  let warm = fn.warm?.owner === owner ? fn.warm : fn.warmBy.get(owner);
  // The warm instance is suspended in another call's host call: this call gets an instance of its own, dropped after.
  if (warm?.busy) return new WarmSdkInstance(fn, target, call, env, suspends, owner).run(call, env);
  if (!warm) {
    warm = new WarmSdkInstance(fn, target, call, env, suspends, owner);
    if (fn.warmBy.size >= MAX_WARM_OWNERS) fn.warmBy.delete(fn.warmBy.keys().next().value!);
    fn.warmBy.set(owner, warm);
  }
  fn.warm = warm;
  const done = (outcome: Outcome) => {
    if (warm.grewTooBig()) {
      if (fn.warmBy.get(owner) === warm) fn.warmBy.delete(owner);
      if (fn.warm === warm) fn.warm = undefined;
    }
    return outcome;
  };
  const outcome = warm.run(call, env);
  return outcome instanceof Promise ? outcome.then(done) : done(outcome);
}

/** A WAGI instance between calls: its WASI shim is bound to each call in turn, its state put back after each. */
interface WagiInstance {
  wasi: WasiShim;
  start: () => void;
  /** undefined: the module cannot be reset (instance_reset.ts), so the instance serves one call only */
  snapshot?: InstanceSnapshot;
}

/** What the WASI shim is bound to outside a call: nothing of any request. */
const WAGI_IDLE: WasiOptions = { args: [], env: {}, stdin: null, stdout: () => {}, stderr: () => {} };
/** Calls on one thread never overlap, so one response buffer serves them all. */
const wagiStdout = new CgiStdout();

function wagiInstance(fn: CompiledFunction): WagiInstance {
  const wasi = new WasiShim(WAGI_IDLE);
  const instance = fn.instantiate({ [METER_MODULE]: { [METER_TICK]: meter.tick }, [WASI_MODULE]: wasi.imports() });
  const memory = exportedMemory(instance);
  if (!memory) throw new Misconfigured(`module does not export its memory as "memory"`);
  wasi.memory = memory;
  const start = instance.exports._start as () => void;
  return { wasi, start, snapshot: InstanceSnapshot.take(instance, memory, fn.resetPlan) };
}

function runWagi(
  fn: CompiledFunction,
  target: RunTarget,
  input: CallInput,
  log: CallLog,
): Outcome & { kind: "response" | "error" } {
  // Taken out for the call: only a call that returns normally puts it back, once reset. A trap, a timeout or an
  // output overrun throws past this and leaves no instance behind; the next call instantiates afresh.
  const warm = fn.wagi ?? wagiInstance(fn);
  fn.wagi = undefined;
  const stdout = wagiStdout;
  stdout.reset();
  warm.wasi.bind({
    args: [target.name],
    env: () => cgiEnviron(input, target.name),
    stdin: input.body,
    stdout: (b) => {
      if (stdout.size + b.length > MAX_RESPONSE_BYTES) throw new OutputTooLarge();
      meter.charge(b.length);
      stdout.write(b);
    },
    stderr: (b) => log.stderrBytes(b),
  });
  let exitCode: number | undefined;
  try {
    warm.start();
  } catch (e) {
    if (!(e instanceof ProcExit)) throw e;
    exitCode = e.code;
  }
  warm.wasi.bind(WAGI_IDLE);
  // After proc_exit the instance is dropped like after a trap, even though a full reset would undo it: it is the
  // rare path (wasi-libc returns from _start on exit code 0), and the conservative one.
  if (exitCode === undefined && warm.snapshot?.restore()) fn.wagi = warm;
  exitCode ??= 0;
  const logs = log.finish();
  if (exitCode !== 0 && stdout.size === 0) {
    const message = `exited with code ${exitCode} and wrote no response`;
    return { kind: "error", reason: "trap", message, logs: [...logs, { stream: "trap", text: message }] };
  }
  const parsed = parseCgiOutput(stdout.bytes());
  if (!parsed.ok) {
    return {
      kind: "error",
      reason: "bad-output",
      message: parsed.error,
      logs: [...logs, { stream: "trap", text: parsed.error }],
    };
  }
  // The body is a view into the shared buffer: copied, since the next call reuses it.
  return { kind: "response", status: parsed.status, headers: parsed.headers, body: parsed.body.slice(), logs };
}

function trapMessage(e: unknown): string {
  if (e instanceof GuestAbort || e instanceof OutputTooLarge) return e.message;
  if (e instanceof BadResponse) return e.message;
  if (e instanceof WebAssembly.RuntimeError) return `trap: ${e.message}`;
  if (e instanceof RangeError && /call stack/i.test(e.message)) return "trap: stack overflow";
  if (e instanceof WebAssembly.LinkError) return `link error: ${e.message}`;
  return `trap: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * One call. `deadline` is a performance.now() value; `budgetLimited` says the deadline is the inline budget
 * rather than the function's timeout, so running out of it asks for a re-run instead of answering 504. A module
 * that calls host services answers with a Promise (it suspends while they work); every other one synchronously.
 */
export function execute(
  fn: CompiledFunction,
  target: RunTarget,
  input: CallInput,
  deadline: number,
  budgetLimited: boolean,
  start = performance.now(),
  env: CallEnv = {},
): Outcome | Promise<Outcome> {
  const mode = fn.mode(target.call);
  if (mode !== "sdk" && mode !== "wagi") {
    return { kind: "error", reason: "misconfigured", message: mode, logs: [{ stream: "trap", text: mode }] };
  }
  const log = new CallLog();
  meter.begin(deadline, start);
  meter.cap = env.timeoutAt ?? (budgetLimited ? Infinity : deadline);
  meter.inline = env.inline ?? false;
  meter.slices = env.slices;
  env.slices?.enter();
  // Whatever the outcome, the thread is released and the meter left clean (waits put it aside and back).
  const end = () => {
    env.slices?.leave();
    meter.begin(Infinity, 0);
  };
  let outcome: Outcome | Promise<Outcome>;
  try {
    outcome = mode === "sdk" ? runSdk(fn, target, input, log, env) : runWagi(fn, target, input, log);
  } catch (e) {
    const failed = failure(e, fn, log, budgetLimited);
    end();
    return failed;
  }
  if (!(outcome instanceof Promise)) {
    end();
    return outcome;
  }
  return outcome.then(
    (o) => o,
    (e) => failure(e, fn, log, budgetLimited),
  ).finally(end);
}

/** What a call that threw produced. */
function failure(e: unknown, fn: CompiledFunction, log: CallLog, budgetLimited: boolean): Outcome {
  // Its memory may be mid-update: never reuse an instance that did not return normally (nor its siblings: which one
  // failed is not known here, and a failure is rare).
  fn.warm = undefined;
  fn.warmBy.clear();
  // Stopped before the effect (nothing was written): the call runs again from the start on an executor.
  if (e instanceof EffectNeedsExecutor) return { kind: "budget", stalled: false, effect: e.call };
  if (e instanceof DeadlineExceeded && budgetLimited && !e.cancelled && !e.final) {
    return { kind: "budget", stalled: meter.stalled };
  }
  const logs = log.finish();
  if (e instanceof DeadlineExceeded && e.cancelled) {
    return { kind: "error", reason: "cancelled", message: "cancelled", logs };
  }
  if (e instanceof BadResponse) {
    return {
      kind: "error",
      reason: "bad-output",
      message: e.message,
      logs: [...logs, { stream: "trap", text: e.message }],
    };
  }
  if (e instanceof Misconfigured) {
    return {
      kind: "error",
      reason: "misconfigured",
      message: e.message,
      logs: [...logs, { stream: "trap", text: e.message }],
    };
  }
  if (e instanceof DeadlineExceeded) {
    return {
      kind: "error",
      reason: "timeout",
      message: "timed out",
      logs: [...logs, { stream: "trap", text: "timed out" }],
    };
  }
  const message = trapMessage(e);
  return { kind: "error", reason: "trap", message, logs: [...logs, { stream: "trap", text: message }] };
}
