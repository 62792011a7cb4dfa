/**
 * Executor Worker: runs calls that outgrew the inline budget, under the function's full timeout. The metering
 * trap ends a looping guest at its deadline; the pool terminates this worker if even that does not happen.
 */
/// <reference lib="deno.worker" />
import { CompiledFunction, execute } from "./engine.ts";
import type { JobReply, RunJob, WorkerInit } from "./executor_protocol.ts";
import { LruMap } from "./lru.ts";
import { meter } from "./meter.ts";

const modules = new LruMap<string, CompiledFunction>(64);

function reply(msg: JobReply) {
  const transfer = "outcome" in msg && msg.outcome.kind === "response" && msg.outcome.body
    ? [msg.outcome.body.buffer as ArrayBuffer]
    : [];
  self.postMessage(msg, { transfer });
}

self.onmessage = (e: MessageEvent<RunJob | WorkerInit>) => {
  if ("init" in e.data) {
    meter.cancel = new Int32Array(e.data.cancel); // the pool sets [0] when the running call's client went away
    return;
  }
  const job = e.data;
  let fn = modules.get(job.key);
  if (!fn) {
    if (!job.bytes) return reply({ jobId: job.jobId, needBytes: true });
    fn = CompiledFunction.compile(job.key, job.bytes);
    modules.set(job.key, fn);
  }
  const input = { ...job.input, headers: new Headers(job.input.headers) };
  const outcome = execute(fn, { name: job.name, call: job.call }, input, performance.now() + job.timeoutMs, false);
  if (outcome.kind === "response" && outcome.body) outcome.body = outcome.body.slice(); // own buffer, transferable
  reply({ jobId: job.jobId, outcome });
};
