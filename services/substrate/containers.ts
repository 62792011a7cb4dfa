/**
 * substrate's container half: runs the containers of every served deployment and proxies the gateway's requests
 * to them. What runs follows TNS and nothing else:
 *  - before a pointer flip (publish or rollback) the target deployment's containers are started and answer HTTP,
 *    so the flip never points at something that is still booting (a redeploy loses no request);
 *  - after a flip, containers no deployment points at are retired: kept for a grace period (requests that
 *    resolved the old route still reach them), drained, then stopped and removed;
 *  - containers carry their deployment key as a label, so a node restarted after kill -9 adopts the ones still
 *    running instead of starting them twice, and a clean shutdown stops them all.
 * A container is identified by `key` (see ContainerDeployment): a deploy that leaves its config alone keeps it.
 */
import { TauError } from "../../runtime/errors.ts";
import { ContainerRuntime } from "../../runtime/container/runtime.ts";
import type { ImageRecord } from "../../runtime/container/images/store.ts";
import type { ContainerDeployment, DeploymentRecord } from "../tns/records.ts";
import { forward, probe, type Upstream, upstream } from "./proxy.ts";
import { containerLabel, containerSpec, crashError } from "./spec.ts";
import { followOutput } from "./output.ts";
import { resolveOrPull } from "./images.ts";
import { isWebSocketUpgrade } from "../http/upgrade.ts";
import { requestFailed } from "../http/errors.ts";
import { siblingsDir, SiblingSockets, siblingsRoot } from "./siblings.ts";

const KEY_LABEL = "tau.key";
/** Readiness for records written before `readiness` existed. */
const READINESS = { path: "/", timeoutMs: 30_000 };
const RETIRE_GRACE_MS = 2_000;
const DRAIN_TIMEOUT_MS = 30_000;
const WATCH_INTERVAL_MS = 1_000;
/** Restart back-off: 1 s, 2 s, 4 s ... up to 60 s; forgotten after 5 minutes without a crash. */
const BACKOFF_MAX_MS = 60_000;
const BACKOFF_RESET_MS = 5 * 60_000;
/**
 * Network namespaces the node keeps made ahead for container starts (runtime/container/netns_pool.ts): each saves a
 * start ~1.1 ms of CPU and holds ~170 KiB of kernel memory while it waits. TAU_NETNS_POOL sets it; 0 turns it off.
 */
function netnsPoolSize(): number {
  const n = Number(Deno.env.get("TAU_NETNS_POOL") ?? 8);
  return Number.isInteger(n) && n >= 0 ? n : 8;
}

interface Instance extends Upstream {
  id: string;
  name: string;
  /** false for a container without a port (it runs, nothing is routed to it) */
  routable: boolean;
}

function instance(id: string, name: string, socket: string | undefined): Instance {
  return { id, name, routable: !!socket, ...upstream(socket ?? "") };
}

type Log = (line: string) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ContainerHost {
  #dataDir: string;
  #log: Log;
  #rt?: Promise<ContainerRuntime>;
  #instances = new Map<string, Instance[]>();
  #starting = new Map<string, Promise<void>>();
  #pinned = new Map<string, number>();
  #retiring = new Set<string>();
  #next = 0;
  #wanted: () => Promise<DeploymentRecord[]>;
  #sweeping: Promise<void> = Promise.resolve();
  #closed = false;
  /** What each running key was started from, so the watcher can replace a replica that died. */
  #deployed = new Map<string, { project: string; c: ContainerDeployment }>();
  #crashes = new Map<string, { count: number; last: number }>();
  #watchTimer?: number;
  #watching = false;

  #echo?: (container: string, line: string) => void;
  #siblings: SiblingSockets;

  /**
   * `wanted` lists the deployments that should be running (every project's served deployment); `echo`, when
   * given, receives every line the deployed containers print (the local cloud streams them to its terminal).
   */
  constructor(
    opts: {
      dataDir: string;
      wanted: () => Promise<DeploymentRecord[]>;
      log?: Log;
      echo?: (container: string, line: string) => void;
    },
  ) {
    this.#dataDir = opts.dataDir;
    this.#wanted = opts.wanted;
    this.#log = opts.log ?? ((line) => console.error(line));
    this.#echo = opts.echo;
    this.#siblings = new SiblingSockets(
      (req, c, requestId) => this.proxy(req, c, { host: req.headers.get("host") ?? c.name, requestId }),
      this.#log,
    );
  }

  #follow(rt: ContainerRuntime, inst: Instance, fromEnd: boolean): void {
    if (this.#echo) followOutput(rt, inst.id, inst.name, fromEnd, this.#echo, () => this.#closed);
  }

  /** Opened on first use: a node whose projects have no containers never needs root or the helper. */
  runtime(): Promise<ContainerRuntime> {
    if (!this.#rt) {
      this.#rt = ContainerRuntime.open(this.#dataDir, { netnsPool: netnsPoolSize() });
      this.#rt.catch(() => (this.#rt = undefined)); // let a later call retry (and report) it
    }
    return this.#rt;
  }

  /** The image a deployment pins (see images.ts): found here, or pulled when the reference names a registry. */
  async resolveImage(ref: string, log: Log): Promise<ImageRecord> {
    return await resolveOrPull(await this.runtime(), ref, log);
  }

  /**
   * Starts what `record` needs and waits until each container answers HTTP. Returns a release function: until
   * it is called, a sweep leaves these containers alone (the flip that will want them has not happened yet).
   */
  async prepare(record: DeploymentRecord, log: Log = this.#log): Promise<() => void> {
    const keys = (record.containers ?? []).map((c) => c.key);
    for (const k of keys) this.#pinned.set(k, (this.#pinned.get(k) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      for (const k of keys) {
        const n = (this.#pinned.get(k) ?? 1) - 1;
        if (n > 0) this.#pinned.set(k, n);
        else this.#pinned.delete(k);
      }
      this.sweep();
    };
    try {
      await Promise.all((record.containers ?? []).map((c) => this.#ensure(record.project, c, log)));
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  #ensure(project: string, c: ContainerDeployment, log: Log): Promise<void> {
    this.#retiring.delete(c.key); // wanted again (a rollback within the grace period): keep it
    this.#deployed.set(c.key, { project, c });
    this.#startWatching();
    const running = this.#instances.get(c.key);
    if (running && running.length >= c.replicas) return Promise.resolve();
    let pending = this.#starting.get(c.key);
    if (!pending) {
      pending = this.#start(project, c, log).finally(() => this.#starting.delete(c.key));
      this.#starting.set(c.key, pending);
    }
    return pending;
  }

  async #start(project: string, c: ContainerDeployment, log: Log): Promise<void> {
    const rt = await this.runtime();
    const label = containerLabel(c, project);
    const have = this.#instances.get(c.key) ?? [];
    const missing = c.replicas - have.length;
    const t0 = performance.now();
    log(`container ${label}: starting ${missing} replica(s) of ${c.image}`);
    const siblings = siblingsDir(siblingsRoot(rt), project);
    await Deno.mkdir(siblings, { recursive: true });
    const spec = containerSpec(project, c, siblings);
    const started: Instance[] = [];
    try {
      for (let i = 0; i < missing; i++) {
        const s = await rt.startContainer(spec, {
          nameSuffix: `-${c.key.slice(0, 6)}-${have.length + i + 1}`,
          // `tau container ls` shows tau.image: what the config named, and the image id it was pinned to.
          labels: { [KEY_LABEL]: c.key, "tau.project": project, "tau.image": `${c.image}@${c.imageId.slice(7, 19)}` },
        });
        started.push(instance(s.id, s.name, s.ports[0]?.socket));
      }
      await Promise.all(started.map((inst) => this.#waitReady(rt, inst, c, label)));
    } catch (err) {
      for (const inst of started) await this.#remove(rt, inst);
      throw err;
    }
    this.#instances.set(c.key, [...(this.#instances.get(c.key) ?? []), ...started]);
    for (const inst of started) this.#follow(rt, inst, false);
    log(`container ${label}: ${started.length} replica(s) ready in ${Math.round(performance.now() - t0)} ms`);
  }

  /** Polls (bounded) until the container answers any HTTP response on its port; fails fast when it exits. */
  async #waitReady(rt: ContainerRuntime, inst: Instance, c: ContainerDeployment, label: string): Promise<void> {
    const readiness = c.readiness ?? READINESS;
    const deadline = Date.now() + readiness.timeoutMs;
    // Read once, then only re-derived from /proc and the status file on each poll (getContainer reads every record).
    let rec = await rt.getContainer(inst.id);
    for (let attempt = 0;; attempt++) {
      if (inst.routable) {
        try {
          await probe(inst, readiness.path, Math.min(2_000, readiness.timeoutMs));
          return;
        } catch { /* not listening yet */ }
      }
      rec = await rt.refresh(rec);
      if (rec.status !== "running") throw await crashError(rt, rec, label);
      if (!inst.routable && attempt >= 2) return; // no port: running is all we can check
      if (Date.now() > deadline) {
        const lines = await rt.lastLogLines(inst.id, 5);
        const within = readiness.timeoutMs >= 1000 ? `${readiness.timeoutMs / 1000} s` : `${readiness.timeoutMs} ms`;
        throw new TauError(`container ${label} did not answer HTTP on port ${c.port} within ${within}`, {
          hint: `make it listen on port ${c.port} (0.0.0.0 or 127.0.0.1 inside the container), or raise ` +
            `readiness.timeout` +
            (lines.length ? `; its last output: ${lines.join(" | ")}` : "; it printed nothing"),
        });
      }
      await sleep(Math.min(10 * (attempt + 1), 100));
    }
  }

  async #remove(rt: ContainerRuntime, inst: Instance): Promise<void> {
    inst.pool.close();
    await rt.removeContainer(inst.id, true).catch((err) =>
      this.#log(`could not remove container ${inst.name}: ${err}`)
    );
  }

  /** Checks every second (unref'd: it never keeps a process alive) that deployed replicas still run. */
  #startWatching(): void {
    if (this.#watchTimer !== undefined || this.#closed) return;
    // Deno's timers are numbers; Node's type declarations (loaded with node: modules) make TypeScript think otherwise.
    const timer = setInterval(() => this.#watch(), WATCH_INTERVAL_MS) as unknown as number;
    Deno.unrefTimer(timer);
    this.#watchTimer = timer;
  }

  /**
   * Replaces replicas that exited (a crash, an OOM kill, `tau container stop`) like a restart policy would:
   * the dead one is dropped from the routing table at once, its replacement joins when it answers, and a key
   * that keeps crashing is retried with exponential back-off instead of in a tight loop.
   */
  async #watch(): Promise<void> {
    if (this.#watching || this.#closed || !this.#rt || this.#instances.size === 0) return;
    this.#watching = true;
    try {
      const rt = await this.#rt;
      const records = new Map((await rt.listContainers()).map((r) => [r.id, r]));
      const alive = new Set([...records.values()].filter((r) => r.status === "running").map((r) => r.id));
      for (const [key, replicas] of this.#instances) {
        const dead = replicas.filter((r) => !alive.has(r.id));
        const source = this.#deployed.get(key);
        if (this.#retiring.has(key) || this.#starting.has(key) || !source) continue;
        if (dead.length) {
          this.#instances.set(key, replicas.filter((r) => alive.has(r.id)));
          for (const inst of dead) {
            const rec = records.get(inst.id);
            const why = rec ? (await crashError(rt, rec, inst.name)).message.replace(" before it was ready", "") : "";
            this.#log(`${why || `container ${inst.name} is gone`}; restarting it`);
            await this.#remove(rt, inst);
          }
          const crash = this.#crashes.get(key);
          const fresh = !crash || Date.now() - crash.last > BACKOFF_RESET_MS;
          this.#crashes.set(key, { count: fresh ? 1 : crash.count + 1, last: Date.now() });
        }
        const have = this.#instances.get(key)?.length ?? 0;
        if (have >= source.c.replicas) continue;
        const crash = this.#crashes.get(key);
        const wait = crash ? Math.min(BACKOFF_MAX_MS, 1000 * 2 ** (crash.count - 1)) : 0;
        if (crash && Date.now() - crash.last < wait) continue;
        this.#ensure(source.project, source.c, this.#log).catch((err) => {
          this.#crashes.set(key, { count: (this.#crashes.get(key)?.count ?? 0) + 1, last: Date.now() });
          this.#log(`container ${containerLabel(source.c, source.project)} did not restart: ${(err as Error).message}`);
        });
      }
    } catch (err) {
      this.#log(`container health check failed: ${(err as Error).message}`);
    } finally {
      this.#watching = false;
    }
  }

  /** Forwards a gateway request to one replica (round robin). */
  /** Keys of the deployed containers with at least one replica running here. */
  runningKeys(): string[] {
    return [...this.#instances].filter(([, replicas]) => replicas.length > 0).map(([key]) => key);
  }

  /** Whether the deployed container `key` runs here, or is starting (a request may wait for it). */
  has(key: string): boolean {
    return (this.#instances.get(key)?.length ?? 0) > 0 || this.#starting.has(key);
  }

  async proxy(
    req: Request,
    c: ContainerDeployment,
    opts: { host: string; requestId: string; clientIp?: string },
  ): Promise<Response> {
    const { requestId } = opts;
    let replicas = this.#instances.get(c.key);
    if (!replicas?.length && this.#starting.has(c.key)) {
      await this.#starting.get(c.key)!.catch(() => {});
      replicas = this.#instances.get(c.key);
    }
    if (!replicas?.length) {
      return requestFailed(503, `container ${c.name} is not running on this node`, requestId);
    }
    const inst = replicas[this.#next++ % replicas.length];
    if (isWebSocketUpgrade(req)) {
      const { relayWebSocket } = await import("./websocket.ts");
      return await relayWebSocket(req, inst.pool.socket, { ...opts, name: c.name });
    }
    try {
      return await forward(req, inst, opts);
    } catch (err) {
      this.#log(`container ${inst.name} did not answer (request ${requestId}): ${(err as Error).message}`);
      return requestFailed(502, `container ${c.name} did not answer`, requestId);
    }
  }

  /** Retires every container no served deployment (or build in progress) wants. Serialised; never throws. */
  sweep(): Promise<void> {
    this.#sweeping = this.#sweeping.then(() => this.#sweepOnce()).catch((err) => {
      this.#log(`container clean-up failed: ${(err as Error).message}`);
    });
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<void> {
    if (this.#closed || (!this.#rt && this.#instances.size === 0)) return;
    const records = await this.#wanted();
    await this.#syncSiblings(records);
    const wanted = new Set([...this.#pinned.keys(), ...records.flatMap((r) => (r.containers ?? []).map((c) => c.key))]);
    for (const key of this.#instances.keys()) {
      if (!wanted.has(key) && !this.#retiring.has(key)) {
        this.#retire(key).catch((err) => this.#log(`could not retire containers: ${(err as Error).message}`));
      }
    }
  }

  async #syncSiblings(records: DeploymentRecord[]): Promise<void> {
    if (this.#rt) await this.#siblings.sync(siblingsRoot(await this.#rt), records);
  }

  async #wantedKeys(): Promise<Set<string>> {
    const keys = new Set(this.#pinned.keys());
    for (const rec of await this.#wanted()) for (const c of rec.containers ?? []) keys.add(c.key);
    return keys;
  }

  /** Grace period (requests holding the old route), then drain, then stop; cancelled if wanted again meanwhile. */
  async #retire(key: string): Promise<void> {
    this.#retiring.add(key);
    await sleep(RETIRE_GRACE_MS);
    if (this.#closed) return; // close() stops everything itself
    if (!this.#retiring.has(key) || (await this.#wantedKeys()).has(key)) {
      this.#retiring.delete(key);
      return;
    }
    this.#retiring.delete(key);
    const replicas = this.#instances.get(key) ?? [];
    this.#instances.delete(key);
    this.#deployed.delete(key);
    this.#crashes.delete(key);
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (replicas.some((r) => r.inflight > 0) && Date.now() < deadline) await sleep(50);
    const rt = await this.runtime();
    await Promise.all(replicas.map(async (inst) => {
      await rt.stopContainer(inst.id, 5_000).catch(() => {});
      await this.#remove(rt, inst);
    }));
    if (replicas.length) {
      this.#log(`retired ${replicas.length} container(s): ${replicas.map((r) => r.name).join(", ")}`);
    }
  }

  /**
   * At node start: adopt the deployed containers still running (after kill -9 of the node), remove the rest, then
   * start whatever the served deployments still miss. Failures are logged; the node serves everything else.
   */
  async restore(): Promise<void> {
    const records = await this.#wanted();
    let rt: ContainerRuntime | null;
    try {
      rt = await this.#openIfUsed(records);
    } catch (err) {
      // Not root, say: functions and websites must still be served. The log says why the containers are not.
      this.#log(`deployed containers are not started: ${(err as Error).message}`);
      return;
    }
    if (!rt) return;
    const wanted = new Set(records.flatMap((r) => (r.containers ?? []).map((c) => c.key)));
    for (const rec of await rt.listContainers()) {
      const key = rec.labels?.[KEY_LABEL];
      if (!key) continue; // started by `tau container run`: not ours
      if (rec.status === "running" && wanted.has(key)) {
        const inst = instance(rec.id, rec.name, rec.ports[0]?.socket);
        this.#instances.set(key, [...(this.#instances.get(key) ?? []), inst]);
        this.#follow(rt, inst, true); // what it printed while the node was down is in `tau container logs`
      } else {
        await rt.removeContainer(rec.id, true).catch(() => {});
      }
    }
    // All at once: one slow or broken container must not hold the others (or the node's start) back.
    await Promise.all(
      records.flatMap((record) =>
        (record.containers ?? []).map((c) =>
          this.#ensure(record.project, c, this.#log).catch((err) =>
            this.#log(`container ${containerLabel(c, record.project)} did not start: ${(err as Error).message}`)
          )
        )
      ),
    );
    await this.#syncSiblings(records);
  }

  async #openIfUsed(records: DeploymentRecord[]): Promise<ContainerRuntime | null> {
    if (records.some((r) => r.containers?.length)) return await this.runtime();
    // Nothing deployed needs containers; still clean up after an earlier run if the runtime is usable here.
    const hasState = await Deno.stat(`${this.#dataDir}/run`).then(() => true, () => false);
    return hasState ? await this.runtime().catch(() => null) : null;
  }

  /**
   * Stops every deployed container (a clean shutdown leaves nothing running; the next start brings them back) and
   * releases the network namespaces made ahead.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#watchTimer);
    await this.#siblings.close();
    await Promise.all([...this.#starting.values()].map((p) => p.catch(() => {})));
    const all = [...this.#instances.values()].flat();
    this.#instances.clear();
    const rt = await this.#rt?.catch(() => undefined);
    if (!rt) return;
    await Promise.all(all.map(async (inst) => {
      await rt.stopContainer(inst.id, 2_000).catch(() => {});
      await this.#remove(rt, inst);
    }));
    await rt.close().catch((err) => this.#log(`could not release the network namespace pool: ${err}`));
  }
}
