/**
 * The executor pool between projects: fair order, the per-project cap, a full queue and a long wait answered
 * "busy", and cancellation when the client goes away. Bounds below are on starvation, kept generous.
 */
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { type ExecutorJob, ExecutorPool } from "./executor_pool.ts";
import type { Outcome } from "./outcome.ts";
import { prepareModule } from "./prepare.ts";
import { callInput, wat } from "./test_support.ts";

const LIMITS = { timeoutMs: 10_000, memoryBytes: 1 << 20 };
const input = () => callInput();

const spin = await prepareModule(
  wat(`(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))`),
  LIMITS,
  "spin",
);
const quick = await prepareModule(
  wat(`(module
    (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1) (data (i32.const 16) "Status: 200\\n\\nok")
    (func (export "_start")
      (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 15))
      (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`),
  LIMITS,
  "quick",
);

function job(project: string, kind: "spin" | "quick", timeoutMs = 10_000): ExecutorJob {
  return { key: kind, bytes: kind === "spin" ? spin : quick, name: kind, timeoutMs, input: input(), project };
}

/**
 * Boots `workers` workers with a call each before a test's measured part: a worker's first boot under `deno test`
 * includes type-checking its module graph (seconds on a loaded CI machine), which would count as queue time.
 */
async function booted(pool: ExecutorPool, workers: number): Promise<void> {
  const calls = Array.from({ length: workers }, (_, i) => pool.run(job(`boot-${i}`, "quick")));
  for (const o of await Promise.all(calls)) assert(isOk(o), `a boot call answered ${JSON.stringify(o).slice(0, 200)}`);
}

const isOk = (o: Outcome) => o.kind === "response" && o.status === 200;
const reason = (o: Outcome) => (o.kind === "error" ? o.reason : o.kind);

Deno.test("executor pool: projects take turns, whoever queued first", async () => {
  const pool = new ExecutorPool({ size: 1 });
  try {
    const order: string[] = [];
    const run = (name: string, project: string) =>
      pool.run(job(project, "quick")).then((o) => (assert(isOk(o), JSON.stringify(o).slice(0, 300)), order.push(name)));
    await booted(pool, 1);
    await Promise.all([run("a1", "a"), run("a2", "a"), run("a3", "a"), run("a4", "a"), run("b1", "b"), run("b2", "b")]);
    assertEquals(order, ["a1", "b1", "a2", "b2", "a3", "a4"]);
  } finally {
    pool.close();
  }
});

Deno.test("executor pool: one project's endless loops leave the other worker to everyone else", async () => {
  const pool = new ExecutorPool({ size: 2 }); // one job per project while another project waits
  try {
    await booted(pool, 2);
    const attack = Array.from({ length: 6 }, () => pool.run(job("attacker", "spin", 1500)));
    await new Promise((r) => setTimeout(r, 100));
    const start = performance.now();
    const victim = await pool.run(job("victim", "quick"));
    const waited = performance.now() - start;
    assert(isOk(victim));
    // Without the cap the victim would wait behind the attacker's loops (6 x 1.5 s); 3 s is a generous bound.
    assert(waited < 3000, `the victim waited ${waited.toFixed(0)} ms`);
    const outcomes = await Promise.all(attack);
    assert(outcomes.every((o) => ["busy", "timeout"].includes(reason(o))), outcomes.map(reason).join(","));
    assert(outcomes.some((o) => reason(o) === "busy"), outcomes.map(reason).join(","));
    const busy = outcomes.find((o) => reason(o) === "busy")!;
    assertStringIncludes(busy.kind === "error" ? busy.message : "", "waited 1500ms for an executor");
  } finally {
    pool.close();
  }
});

Deno.test("executor pool: alone, a project uses every worker; another project's call takes one back", async () => {
  const pool = new ExecutorPool({ size: 2 });
  try {
    const own = [pool.run(job("p", "spin", 1500)), pool.run(job("p", "spin", 1500))];
    for (let i = 0; i < 100 && pool.busy < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assertEquals(pool.busy, 2, "both workers run the lone project's calls");
    // The second loop is over p's cap once q waits: it is stopped and queued again, not answered "cancelled".
    const start = performance.now();
    assert(isOk(await pool.run(job("q", "quick"))));
    const waited = performance.now() - start;
    assert(waited < 1000, `q waited ${waited.toFixed(0)} ms for a worker held by p's second loop`);
    for (const o of await Promise.all(own)) assert(["timeout", "busy"].includes(reason(o)), reason(o));
  } finally {
    pool.close();
  }
});

Deno.test("executor pool: a project's queue is bounded; beyond it calls are answered busy at once", async () => {
  const pool = new ExecutorPool({ size: 1, maxQueuedPerProject: 2 });
  try {
    const calls = Array.from({ length: 5 }, () => pool.run(job("p", "spin", 800)));
    const settled = await Promise.race([
      Promise.all(calls.slice(3)),
      new Promise((r) => setTimeout(() => r("slow"), 500)),
    ]);
    assert(settled !== "slow", "calls over the queue bound were not answered at once");
    for (const o of settled as Outcome[]) {
      assertEquals(reason(o), "busy");
      assertStringIncludes(o.kind === "error" ? o.message : "", "project p already has 2 calls waiting");
    }
    await Promise.all(calls);
  } finally {
    pool.close();
  }
});

Deno.test("executor pool: a call whose client went away stops running and frees its worker", async () => {
  const pool = new ExecutorPool({ size: 1 });
  try {
    const gone = new AbortController();
    const abandoned = pool.run(job("p", "spin"), gone.signal);
    const queuedGone = new AbortController();
    const queued = pool.run(job("p", "spin"), queuedGone.signal);
    await new Promise((r) => setTimeout(r, 200));
    queuedGone.abort();
    assertEquals(reason(await queued), "cancelled");
    gone.abort();
    assertEquals(reason(await abandoned), "cancelled");
    // The loop had 10 s left: the worker is free again long before that.
    const start = performance.now();
    assert(isOk(await pool.run(job("p", "quick"))));
    const waited = performance.now() - start;
    assert(waited < 3000, `the next call waited ${waited.toFixed(0)} ms for the abandoned one`);
  } finally {
    pool.close();
  }
});

Deno.test("executor pool: a call's timeout starts once its worker has booted, not while it boots", async () => {
  const pool = new ExecutorPool({ size: 1 });
  try {
    // Booting a worker takes ~80-300 ms, far more than this call's timeout (and its 200 ms backstop grace).
    const o = await pool.run(job("p", "quick", 20));
    assert(isOk(o), JSON.stringify(o));
  } finally {
    pool.close();
  }
});

Deno.test("executor pool: warm after first use starts no worker before a call needs one, then keeps one", async () => {
  const pool = new ExecutorPool({ size: 2 });
  try {
    pool.warmAfterFirstUse();
    assertEquals(pool.workers, 0);
    assert(isOk(await pool.run(job("p", "quick"))));
    assertEquals(pool.workers, 1);
    // An unmetered loop ignores its deadline: the backstop terminates its worker, and another boots ahead of need.
    const stuck: ExecutorJob = {
      key: "stuck",
      bytes: wat(`(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))`),
      name: "stuck",
      timeoutMs: 100,
      input: input(),
      project: "p",
    };
    const o = await pool.run(stuck);
    assertEquals(reason(o), "timeout");
    assertEquals(pool.workers, 1);
  } finally {
    pool.close();
  }
});
