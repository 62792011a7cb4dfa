/**
 * patrick: turns push events into build jobs, runs them one project at a time, and keeps their status and logs.
 * A build always takes both repos' heads when it starts, so a queued job is covered by any later push to its
 * branch: the later one supersedes it (a flood of pushes to one branch is one build). Branch `main`, the one that is
 * served, goes first. (How many branches one push may move is capped by git hosting: services/git/push_limits.ts.)
 *
 * Keys (Deno KV, prefix "patrick"):
 *   ["patrick", "job", jobId]               -> Job
 *   ["patrick", "by_project", project, jobId] -> true     (job ids sort by creation time)
 * Logs stream live from memory while a job runs and are stored in Helia (Job.logCid) when it ends.
 */
import { TauError } from "../../runtime/errors.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import type { PushEvent } from "../git/hosting.ts";

export type JobStatus = "queued" | "running" | "success" | "failed" | "superseded";

export interface Job {
  id: string;
  project: string;
  repo: string;
  branch: string;
  commit: string;
  source: PushEvent["source"];
  status: JobStatus;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** One line saying why the build failed (the log has the rest). */
  error?: string;
  logCid?: string;
  deployment?: { id: string; cid: string };
  /** The later job of the same branch that built this one's commit (status "superseded"). */
  supersededBy?: string;
}

export type JobLog = (line: string) => void;
export type Builder = (job: Job, log: JobLog) => Promise<{ id: string; cid: string }>;

/** The branch served on a project's domains: built before any other branch waiting in the queue. */
const SERVED_BRANCH = "main";

interface ProjectQueue {
  waiting: Job[];
  running: boolean;
}

interface LiveLog {
  lines: string[];
  listeners: Set<(line: string | null) => void>;
}

export class Patrick {
  #kv: Deno.Kv;
  #store: ContentStore;
  #build: Builder;
  #queues = new Map<string, ProjectQueue>();
  #live = new Map<string, LiveLog>();
  /** Resolved when a queued or running job ends; waitFor() uses it. */
  #finished = new Map<string, PromiseWithResolvers<void>>();
  #seq = 0;
  #echo: boolean;
  #onFinished?: (job: Job) => Promise<void>;

  constructor(
    kv: Deno.Kv,
    store: ContentStore,
    build: Builder,
    opts: { echo?: boolean; onFinished?: (job: Job) => Promise<void> } = {},
  ) {
    this.#kv = kv;
    this.#store = store;
    this.#build = build;
    this.#echo = opts.echo ?? false;
    this.#onFinished = opts.onFinished;
  }

  /** Jobs a previous process left queued or running are run again (oldest first; builds are idempotent). */
  async resume(): Promise<void> {
    for await (const e of this.#kv.list<Job>({ prefix: ["patrick", "job"] })) {
      if (e.value.status === "queued" || e.value.status === "running") {
        await this.#enqueue({ ...e.value, status: "queued" });
      }
    }
  }

  /** The single entry point for builds: git hosting and verified webhooks both call this. */
  async onPush(event: PushEvent): Promise<Job> {
    const id = `${Date.now().toString(36)}${(this.#seq++ % 1296).toString(36).padStart(2, "0")}${
      crypto.getRandomValues(new Uint8Array(2)).reduce((s, b) => s + b.toString(36), "")
    }`;
    const job: Job = {
      id,
      project: event.project,
      repo: event.repo,
      branch: event.branch,
      commit: event.commit,
      source: event.source,
      status: "queued",
      createdAt: new Date().toISOString(),
    };
    await this.#kv.atomic()
      .set(["patrick", "job", id], job)
      .set(["patrick", "by_project", job.project, id], true)
      .commit();
    await this.#enqueue(job);
    return job;
  }

  async #enqueue(job: Job): Promise<void> {
    this.#finished.set(job.id, Promise.withResolvers<void>());
    let queue = this.#queues.get(job.project);
    if (!queue) this.#queues.set(job.project, queue = { waiting: [], running: false });
    const covered = queue.waiting.filter((j) => j.branch === job.branch);
    queue.waiting = queue.waiting.filter((j) => j.branch !== job.branch);
    queue.waiting.push(job);
    // One build at a time per project: a later push always builds on top of the earlier one's result.
    if (!queue.running) {
      queue.running = true;
      this.#drain(job.project, queue).catch((err) => console.error(`builds of ${job.project}: ${err}`));
    }
    for (const old of covered) await this.#supersede(old, job);
  }

  async #drain(project: string, queue: ProjectQueue): Promise<void> {
    try {
      while (queue.waiting.length) {
        const served = queue.waiting.findIndex((j) => j.branch === SERVED_BRANCH);
        const [job] = queue.waiting.splice(served >= 0 ? served : 0, 1);
        await this.#run(job).catch((err) => console.error(`job ${job.id}: ${err}`));
      }
    } finally {
      queue.running = false;
      if (this.#queues.get(project) === queue && !queue.waiting.length) this.#queues.delete(project);
    }
  }

  async #supersede(old: Job, by: Job): Promise<void> {
    const job: Job = { ...old, status: "superseded", supersededBy: by.id, finishedAt: new Date().toISOString() };
    await this.#kv.set(["patrick", "job", job.id], job);
    this.#finished.get(job.id)?.resolve();
    this.#finished.delete(job.id);
  }

  async #run(queued: Job): Promise<void> {
    const live: LiveLog = { lines: [], listeners: new Set() };
    this.#live.set(queued.id, live);
    const log: JobLog = (line) => {
      const stamped = `${new Date().toISOString().slice(11, 23)} ${line}`;
      live.lines.push(stamped);
      for (const l of live.listeners) l(stamped);
      if (this.#echo) console.log(`[build ${queued.project} ${queued.id}] ${line}`);
    };
    let job: Job = { ...queued, status: "running", startedAt: new Date().toISOString() };
    await this.#kv.set(["patrick", "job", job.id], job);
    log(`build ${job.id}: ${job.project} ${job.repo}@${job.commit.slice(0, 12)} on ${job.branch} (${job.source})`);
    try {
      const deployment = await this.#build(job, log);
      job = { ...job, status: "success", deployment };
      log(`live: deployment ${deployment.id} (${deployment.cid})`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      job = { ...job, status: "failed", error: message };
      log(`FAILED: ${message}`);
      if (err instanceof TauError && err.hint) log(`hint: ${err.hint}`);
      if (err instanceof TauError && err.detail) { for (const l of err.detail.split("\n")) log(`  ${l}`); }
      log("what was live before this build is still live");
    }
    job.finishedAt = new Date().toISOString();
    job.logCid = await this.#store.addBytes(new TextEncoder().encode(live.lines.join("\n") + "\n"));
    await this.#kv.set(["patrick", "job", job.id], job);
    // (the hoarder adds the log to what the deployment keeps on other nodes)
    await this.#onFinished?.(job).catch((err) => console.error(`job ${job.id}: after the build: ${err}`));
    this.#live.delete(job.id);
    for (const l of live.listeners) l(null);
    this.#finished.get(job.id)?.resolve();
    this.#finished.delete(job.id);
  }

  async getJob(id: string): Promise<Job> {
    const job = (await this.#kv.get<Job>(["patrick", "job", id])).value;
    if (!job) throw new TauError(`build ${id} does not exist`, { status: 404, hint: "list builds with: tau builds" });
    return job;
  }

  /** Newest first. */
  async listJobs(project?: string, limit = 50): Promise<Job[]> {
    const ids: string[] = [];
    if (project) {
      for await (const e of this.#kv.list({ prefix: ["patrick", "by_project", project] }, { reverse: true, limit })) {
        ids.push(e.key[3] as string);
      }
      const jobs = await Promise.all(ids.map((id) => this.#kv.get<Job>(["patrick", "job", id])));
      return jobs.map((j) => j.value).filter((j): j is Job => !!j);
    }
    const out: Job[] = [];
    for await (const e of this.#kv.list<Job>({ prefix: ["patrick", "job"] }, { reverse: true, limit })) {
      out.push(e.value);
    }
    return out;
  }

  /** Resolves when the job has finished (success or failure). */
  async waitFor(id: string): Promise<Job> {
    await this.#finished.get(id)?.promise;
    return await this.getJob(id);
  }

  /** The build log: everything so far, then (with follow) each new line until the job ends. */
  async logStream(id: string, follow: boolean): Promise<ReadableStream<Uint8Array>> {
    const job = await this.getJob(id);
    const enc = new TextEncoder();
    const live = this.#live.get(id);
    if (!live) {
      if (job.logCid) {
        const bytes = await this.#store.cat(job.logCid);
        return new Response(bytes).body!;
      }
      if (job.status === "superseded") {
        return new Response(`build ${id} was superseded by build ${job.supersededBy}, which built its commit\n`).body!;
      }
      return new Response(`build ${id} is ${job.status}: no log yet\n`).body!;
    }
    let listener: (line: string | null) => void;
    return new ReadableStream<Uint8Array>({
      start(controller) {
        for (const l of live.lines) controller.enqueue(enc.encode(l + "\n"));
        if (!follow) return controller.close();
        listener = (line) => {
          if (line === null) controller.close();
          else controller.enqueue(enc.encode(line + "\n"));
        };
        live.listeners.add(listener);
      },
      cancel() {
        live.listeners.delete(listener);
      },
    });
  }
}
