/**
 * patrick: turns push events into build jobs, runs them one project at a time, and keeps their status and logs.
 * A build always takes both repos' heads when it starts, so a queued job is covered by any later push to its
 * branch: the later one supersedes it (a flood of pushes to one branch is one build). Branch `main`, the one that is
 * served, goes first. (How many branches one push may move is capped by git hosting: services/git/push_limits.ts.)
 *
 * Jobs live in the cloud's replicated store, so every node lists them. On a cloud each project's builds run on one
 * node, its builder (`builderOf`: the first live monkey node by rendezvous hash of the project; `tau dev`: itself);
 * every node that could build looks at the open jobs every SCAN_MS and when the store changes, and runs those of the
 * projects it builds. A builder that dies leaves its jobs open (queued or running): the next in rank takes them over
 * once the directory counts it dead. During a partition two sides can each think they build a project; builds are
 * idempotent and the later flip wins in TNS.
 *
 * Keys (first part "patrick"):
 *   ["patrick", "job", jobId]                 -> Job
 *   ["patrick", "by_project", project, jobId] -> true     (job ids sort by creation time)
 *   ["patrick", "open", project, jobId]       -> true     (queued or running: what builders scan)
 * Logs stream live from the builder's memory while a job runs (other nodes ask it: liveLog) and are stored in Helia
 * (Job.logCid) when it ends.
 */
import { TauError } from "../../runtime/errors.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import type { PushEvent } from "../git/hosting.ts";
import type { Entry, StateStore } from "../kvdb/mod.ts";

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
  /** The node that ran (or runs) it. */
  node?: string;
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
/** How often a node that can build looks for open jobs of its projects (changes also trigger a look at once). */
export const SCAN_MS = 2_000;

interface ProjectQueue {
  waiting: Job[];
  running: boolean;
}

interface LiveLog {
  lines: string[];
  listeners: Set<(line: string | null) => void>;
}

export interface PatrickOptions {
  echo?: boolean;
  onFinished?: (job: Job) => Promise<void>;
  /** This node's id (its peer id; "local" for tau dev). */
  nodeId?: string;
  /** Whether this node builds `project` now. Absent: it builds everything (tau dev). */
  builds?: (project: string) => boolean;
  /** Whether the node that took a job is still alive (a dead one's running jobs are taken over). */
  alive?: (node: string) => boolean;
  /** The live log of a job running on another node (RPC to it). */
  remoteLog?: (job: Job, follow: boolean) => Promise<ReadableStream<Uint8Array>>;
}

export class Patrick {
  #state: StateStore;
  #store: ContentStore;
  #build: Builder;
  #queues = new Map<string, ProjectQueue>();
  #live = new Map<string, LiveLog>();
  /** Job ids this process has taken (queued here or running here). */
  #taken = new Set<string>();
  /** Resolved when a queued or running job ends; waitFor() uses it. */
  #finished = new Map<string, PromiseWithResolvers<void>>();
  #seq = 0;
  #opts: PatrickOptions;
  #timer?: ReturnType<typeof setInterval>;
  #offChange?: () => void;
  #scanning?: Promise<void>;

  constructor(state: StateStore, store: ContentStore, build: Builder, opts: PatrickOptions = {}) {
    this.#state = state;
    this.#store = store;
    this.#build = build;
    this.#opts = opts;
  }

  get #node(): string {
    return this.#opts.nodeId ?? "local";
  }

  /**
   * Start building: open jobs a previous process left (queued or running) are run again (builds are idempotent),
   * and from now on every open job of a project this node builds.
   */
  async resume(): Promise<void> {
    await this.#scan(true);
    this.#offChange = this.#state.onChange((entries: Entry[]) => {
      if (entries.some((e) => (e.key[0] === "patrick" && e.key[1] === "open") || e.key[0] === "*")) this.#kick();
    });
    const timer = setInterval(() => this.#kick(), SCAN_MS);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#offChange?.();
  }

  #kick(): void {
    if (this.#scanning) return;
    this.#scanning = this.#scan(false).catch((err) => console.error(`patrick: looking for jobs failed: ${err}`))
      .finally(() => (this.#scanning = undefined));
  }

  /** Take the open jobs of the projects this node builds (oldest first). `restart`: also this node's own running. */
  async #scan(restart: boolean): Promise<void> {
    const open = await this.#state.list<true>(["patrick", "open"]);
    for (const e of open) {
      const [, , project, id] = e.key;
      if (this.#taken.has(id)) continue;
      if (this.#opts.builds && !this.#opts.builds(project)) continue;
      const job = await this.#state.get<Job>(["patrick", "job", id]);
      if (!job || (job.status !== "queued" && job.status !== "running")) {
        await this.#state.delete(["patrick", "open", project, id]);
        continue;
      }
      // A running job belongs to its node while that node lives (and to this one after a restart).
      if (job.status === "running" && job.node && job.node !== this.#node && this.#opts.alive?.(job.node) !== false) {
        continue;
      }
      if (job.status === "running" && job.node === this.#node && !restart) continue;
      await this.#enqueue({ ...job, status: "queued" });
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
    // Taken before it is open: a scan woken by the write below must not queue it a second time.
    const mine = !this.#opts.builds || this.#opts.builds(job.project);
    if (mine) this.#taken.add(id);
    await this.#state.set(["patrick", "job", id], job);
    await this.#state.set(["patrick", "by_project", job.project, id], true);
    await this.#state.set(["patrick", "open", job.project, id], true);
    if (mine) await this.#enqueue(job);
    return job;
  }

  async #enqueue(job: Job): Promise<void> {
    this.#taken.add(job.id);
    if (!this.#finished.has(job.id)) this.#finished.set(job.id, Promise.withResolvers<void>());
    let queue = this.#queues.get(job.project);
    if (!queue) this.#queues.set(job.project, queue = { waiting: [], running: false });
    if (queue.waiting.some((j) => j.id === job.id)) return;
    const covered = queue.waiting.filter((j) => j.branch === job.branch && j.createdAt <= job.createdAt);
    const newer = queue.waiting.find((j) => j.branch === job.branch && j.createdAt > job.createdAt);
    if (newer) {
      await this.#supersede(job, newer);
      return;
    }
    queue.waiting = queue.waiting.filter((j) => !covered.includes(j));
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

  async #close(job: Job): Promise<void> {
    await this.#state.set(["patrick", "job", job.id], job);
    await this.#state.delete(["patrick", "open", job.project, job.id]);
    this.#taken.delete(job.id);
    this.#finished.get(job.id)?.resolve();
    this.#finished.delete(job.id);
  }

  async #supersede(old: Job, by: Job): Promise<void> {
    await this.#close({ ...old, status: "superseded", supersededBy: by.id, finishedAt: new Date().toISOString() });
  }

  async #run(queued: Job): Promise<void> {
    const live: LiveLog = { lines: [], listeners: new Set() };
    this.#live.set(queued.id, live);
    const log: JobLog = (line) => {
      const stamped = `${new Date().toISOString().slice(11, 23)} ${line}`;
      live.lines.push(stamped);
      for (const l of live.listeners) l(stamped);
      if (this.#opts.echo) console.log(`[build ${queued.project} ${queued.id}] ${line}`);
    };
    let job: Job = { ...queued, status: "running", startedAt: new Date().toISOString(), node: this.#node };
    await this.#state.set(["patrick", "job", job.id], job);
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
    await this.#state.set(["patrick", "job", job.id], job);
    // (the hoarder adds the log to what the deployment keeps on other nodes)
    await this.#opts.onFinished?.(job).catch((err) => console.error(`job ${job.id}: after the build: ${err}`));
    this.#live.delete(job.id);
    for (const l of live.listeners) l(null);
    await this.#close(job);
  }

  /**
   * A project's claim on an FQDN lost to an earlier one (seen when replicas met after a partition): the build that
   * deployed it is marked failed, once, by the node that builds the project, with the reason.
   */
  async claimLost(lost: { fqdn: string; project: string; owner: string }, release: () => Promise<void>): Promise<void> {
    if (this.#opts.builds && !this.#opts.builds(lost.project)) return;
    // Withdrawn first: the loss is reported once, and the older deployments that named the FQDN are left alone.
    await release();
    const jobs = await this.listJobs(lost.project, 50);
    const deployed = jobs.find((j) => j.status === "success" && j.branch === SERVED_BRANCH);
    if (!deployed) return;
    const error = `domain ${lost.fqdn} is served by project ${lost.owner}, which claimed it first ` +
      "(seen when the cloud's nodes met again after being apart)";
    await this.#state.set(["patrick", "job", deployed.id], { ...deployed, status: "failed", error } satisfies Job);
    console.error(`build ${deployed.id} of ${lost.project}: ${error}`);
  }

  async getJob(id: string): Promise<Job> {
    const job = await this.#state.get<Job>(["patrick", "job", id]);
    if (!job) throw new TauError(`build ${id} does not exist`, { status: 404, hint: "list builds with: tau builds" });
    return job;
  }

  /** Newest first. */
  async listJobs(project?: string, limit = 50): Promise<Job[]> {
    if (project) {
      const ids = await this.#state.list<true>(["patrick", "by_project", project], { reverse: true, limit });
      const jobs = await Promise.all(ids.map((e) => this.#state.get<Job>(["patrick", "job", e.key[3]])));
      return jobs.filter((j): j is Job => !!j);
    }
    return (await this.#state.list<Job>(["patrick", "job"], { reverse: true, limit })).map((e) => e.value);
  }

  /** Resolves when the job has finished (success, failure, superseded), wherever it runs. */
  async waitFor(id: string): Promise<Job> {
    const mine = this.#finished.get(id);
    if (mine) {
      await mine.promise;
      return await this.getJob(id);
    }
    // Built elsewhere: watch the store (changes wake the wait; a bounded poll covers a missed one).
    for (;;) {
      const job = await this.getJob(id);
      if (job.status !== "queued" && job.status !== "running") return job;
      await new Promise<void>((resolve) => {
        const off = this.#state.onChange((entries) => {
          if (entries.some((e) => e.key[2] === id || e.key[0] === "*")) done();
        });
        const timer = setTimeout(() => done(), 500);
        function done() {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
    }
  }

  /** The build log: everything so far, then (with follow) each new line until the job ends. */
  async logStream(id: string, follow: boolean): Promise<ReadableStream<Uint8Array>> {
    const job = await this.getJob(id);
    const live = this.#live.get(id);
    if (!live) {
      if (job.logCid) return new Response(await this.#store.cat(job.logCid)).body!;
      if (job.status === "superseded") {
        return new Response(`build ${id} was superseded by build ${job.supersededBy}, which built its commit\n`).body!;
      }
      if (job.status === "running" && job.node && job.node !== this.#node && this.#opts.remoteLog) {
        return await this.#opts.remoteLog(job, follow);
      }
      return new Response(`build ${id} is ${job.status}: no log yet\n`).body!;
    }
    return this.liveLog(id, follow)!;
  }

  /** The live log of a job running here (undefined when none): what other nodes' logStream asks for. */
  liveLog(id: string, follow: boolean): ReadableStream<Uint8Array> | undefined {
    const live = this.#live.get(id);
    if (!live) return undefined;
    const enc = new TextEncoder();
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
