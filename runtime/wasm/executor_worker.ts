/**
 * Executor Worker: runs calls that outgrew the inline budget (or may not run inline at all), under the function's
 * full timeout. The metering trap ends a looping guest at its deadline; the pool terminates this worker if even that
 * does not happen. A guest's host-service calls become messages to the serving thread (host/bridge.ts) while the
 * guest is suspended (JSPI); the first one with an effect commits the call (Meter.committed, taubyte/mod.ts).
 */
/// <reference lib="deno.worker" />
import { CompiledFunction, execute } from "./engine.ts";
import type { JobReply, RunJob, ToWorker, WorkerBooted } from "./executor_protocol.ts";
import { HostProxy } from "./host/bridge.ts";
import { LruMap } from "./lru.ts";
import { meter } from "./meter.ts";

const modules = new LruMap<string, CompiledFunction>(64);
const proxy = new HostProxy((msg) => self.postMessage(msg));
const host = proxy.services();

function reply(msg: JobReply) {
  const transfer = "outcome" in msg && msg.outcome.kind === "response" && msg.outcome.body
    ? [msg.outcome.body.buffer as ArrayBuffer]
    : [];
  self.postMessage(msg, { transfer });
}

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if ("init" in msg) {
    meter.cancel = new Int32Array(msg.cancel); // the pool sets [0] to stop the running call (executor_protocol.ts)
    self.postMessage({ booted: true } satisfies WorkerBooted);
    return;
  }
  if ("hostReply" in msg) return proxy.answer(msg.hostReply);
  await run(msg);
};

async function run(job: RunJob) {
  let fn = modules.get(job.key);
  if (!fn) {
    if (!job.bytes) return reply({ jobId: job.jobId, needBytes: true });
    fn = CompiledFunction.compile(job.key, job.bytes);
    modules.set(job.key, fn);
  }
  const input = { ...job.input, headers: new Headers(job.input.headers) };
  proxy.jobId = job.jobId;
  const env = { host: fn.hostCalls.length ? host : undefined, self: job.self };
  const start = performance.now();
  const outcome = await execute(
    fn,
    { name: job.name, call: job.call },
    input,
    start + job.timeoutMs,
    false,
    start,
    env,
  );
  proxy.forget();
  if (outcome.kind === "response" && outcome.body) outcome.body = outcome.body.slice(); // own buffer, transferable
  reply({ jobId: job.jobId, outcome });
}
