/**
 * One tau node: every service the shape enables, on one HTTP listener. The local cloud (`tau dev`) enables all of
 * them in one process; services talk through plain method calls here, the same interfaces a multi-node cloud puts
 * on libp2p. Requests for the node's own host (127.0.0.1, localhost) go to the control plane (API under /api, git
 * under /git), and only when they come from this machine; every other Host header goes to the gateway.
 */
import { Hono } from "hono";
import { join, resolve } from "node:path";
import { TauError } from "../runtime/errors.ts";
import { openNodeKv } from "../runtime/kv/open.ts";
import { type ContentStore, openContentStore } from "../runtime/storage/helia.ts";
// Not mod.ts: it also re-exports the compiler and binaryen, which only the build worker should load.
import { FunctionRuntime } from "../runtime/wasm/runtime.ts";
import { ModuleBuilder } from "../runtime/wasm/builder.ts";
import { Auth } from "./auth/projects.ts";
import { authRoutes } from "./auth/routes.ts";
import { Gateway } from "./gateway/gateway.ts";
import type { Forwarder } from "./gateway/forward.ts";
import { GitHosting } from "./git/hosting.ts";
import { errorResponse, requestFailed } from "./http/errors.ts";
import { API_BODY, BodyTooLarge, BodyUnreadable, closingHeaders, limitBody } from "./http/body.ts";
import { type FdLimit, raiseFdLimit } from "./http/fd_limit.ts";
import { requestHost } from "./http/host.ts";
import { type ConnectionControl, listen } from "./http/listener.ts";
import { Monkey } from "./monkey/build.ts";
import { Patrick } from "./patrick/jobs.ts";
import { patrickRoutes } from "./patrick/routes.ts";
import { SERVED_BRANCH, Tns } from "./tns/tns.ts";
import { adoptOldKeys } from "./kvdb/migrate.ts";
import { Rollout } from "./rollout/rollout.ts";
import { checkDomain, type DvOptions, readDvKeys } from "./dv/dv.ts";
import { dvRoutes } from "./dv/routes.ts";
import { type DeploymentRecord, fqdnsOf } from "./tns/records.ts";
import { Kvdb } from "./kvdb/store.ts";
import { openUserDataStore } from "./data/store.ts";
import { ReplicaStore } from "./kvdb/mod.ts";
import { ContainerHost } from "./substrate/containers.ts";
import { EventFunctions } from "./events/functions.ts";
import type { Pubsub } from "./pubsub/mod.ts";
import { functionLogs, startEventServices } from "./events/start.ts";
import { tnsRoutes } from "./tns/routes.ts";
import type { ShapeConfig } from "./config/shape.ts";
// The multi-node modules (libp2p, gossipsub, RPC, replication, hoarder) load only for a shaped node: `tau dev` starts
// without them.
import type { Cluster } from "./cluster/cluster.ts";
import { bearerOrBasicSecret, readAdminToken, sameSecret } from "./access/token.ts";
import { clusterRoutes } from "./cluster/routes.ts";
import { type ServiceName, SERVICES } from "./config/services.ts";
import { freeBytes } from "../runtime/storage/space.ts";
import { loadavg } from "node:os";
import type { Hoarder } from "./hoarder/hoarder.ts";
import { hoarderRoutes } from "./hoarder/routes.ts";
import { nodeMemory } from "./node_memory.ts";
import { startIdleTrim } from "../runtime/idle_trim.ts";

export interface NodeOptions {
  dataDir: string;
  /** host:port to listen on; port 0 picks a free one. */
  http: string;
  /** Print build logs and function logs to this process's terminal. */
  echoLogs?: boolean;
  inlineBudgetMs?: number;
  /** A node of a multi-node cloud (`tau serve --root --shape`): starts libp2p and the service directory. */
  shape?: ShapeConfig;
  /** Largest git push accepted, in bytes (default: services/git/push_limits.ts DEFAULT_MAX_PUSH_BYTES). */
  maxPushBytes?: number;
  /**
   * How long a connection may take to start a request, after it opens and after each request it sent: half-sent
   * heads and idle keep-alive connections are closed after it. Default 10 s.
   */
  headerTimeoutMs?: number;
  /** Open connections at most. Default 10,000, fewer when the open-file limit leaves less room. */
  maxConnections?: number;
}

export const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
/** An idle connection costs ~27.5 KB of node memory (measured with 5,000 half-sent heads): 10,000 ~ 275 MB. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/** How long a deploy waits for its function modules to compile before it flips anyway (see precompile). */
const PRECOMPILE_WAIT_MS = 5_000;

export interface TauNode {
  url: string;
  dataDir: string;
  kv: Deno.Kv;
  store: ContentStore;
  auth: Auth;
  tns: Tns;
  patrick: Patrick;
  git: GitHosting;
  gateway: Gateway;
  containers: ContainerHost;
  events: EventFunctions;
  pubsub: Pubsub;
  cluster?: Cluster;
  close(): Promise<void>;
}

export function parseListen(http: string): { hostname: string; port: number } {
  const m = http.match(/^(\[[^\]]+\]|[^:]+):(\d+)$/);
  if (!m || Number(m[2]) > 65535) {
    throw new TauError(`--http ${http} is not HOST:PORT`, { hint: "for example --http 127.0.0.1:8080" });
  }
  return { hostname: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

export async function startNode(opts: NodeOptions): Promise<TauNode> {
  const { hostname, port } = parseListen(opts.http);
  const dataDir = resolve(opts.dataDir);
  await Deno.mkdir(dataDir, { recursive: true });
  await checkWritable(dataDir);
  const kv = await openNodeKv(dataDir);
  const kvdb = await Kvdb.open({ kv, writer: opts.shape?.identity.peerId ?? "local" });
  // Read before anything starts: a bad `hoarder:` setting is one clear error, not a half-started node.
  const hoarderSettings = opts.shape
    ? await (await import("./hoarder/settings.ts")).readHoarderSettings(opts.shape.file)
    : undefined;
  await adoptOldKeys(kv, kvdb);
  // Filled in once the listener is bound (port 0 picks one); the directory reads it at each heartbeat.
  let url = "";
  const log = (line: string) => console.error(line);
  // What the node announces it runs; bound once the container host exists (it needs the cluster's state first).
  let runningContainers = (): string[] => [];
  // What only a cloud's shapes run is imported by computed specifiers: `tau dev` does not load libp2p (main.ts).
  const cluster = opts.shape
    ? await (await import(
      new URL("./cluster/cluster.ts", import.meta.url).href
    ) as typeof import("./cluster/cluster.ts")).startCluster(opts.shape, {
      kv,
      httpUrl: () => url,
      dataDir,
      log,
      containers: () => runningContainers(),
    })
    : undefined;
  const shared = cluster
    ? await (await import(new URL("./cluster/state.ts", import.meta.url).href) as typeof import("./cluster/state.ts"))
      .clusterState(cluster, kvdb, log)
    : undefined;
  const store = await openContentStore(join(dataDir, "storage"), { libp2p: cluster?.p2p.libp2p });
  const state = shared?.state ?? new ReplicaStore(kvdb);
  const tns = new Tns(state, store, opts.shape?.identity.peerId ?? "local");
  // substrate: the containers of every served deployment, started before TNS points at them (see containers.ts).
  const containers = new ContainerHost({
    dataDir: join(dataDir, "containers"),
    wanted: () => tns.servedRecords(),
    log: (line) => console.error(line),
    echo: opts.echoLogs ? (name, line) => console.error(`[container ${name}] ${line}`) : undefined,
  });
  runningContainers = () => containers.runningKeys();
  const dv: DvOptions | undefined = opts.shape?.dv
    ? {
      keys: await readDvKeys(opts.shape.dv.privateKeyFile, opts.shape.dv.publicKeyFile),
      generated: opts.shape.generatedDomain,
      resolver: opts.shape.dv.resolver,
    }
    : undefined;
  // hoarder: on a cloud, publishes wait for copies on other nodes; a node whose shape runs it keeps copies.
  // User data (databases, storages, globals): its own replicated store, held by hoarder nodes on a cloud.
  const userData = await openUserDataStore({ kv, writer: opts.shape?.identity.peerId ?? "local", cluster, log });
  const hoarder: Hoarder | undefined = cluster && hoarderSettings
    ? await (await import("./hoarder/hoarder.ts")).Hoarder.start({
      cluster,
      state,
      objects: userData.store,
      store,
      kv,
      tns,
      settings: hoarderSettings,
      keeps: cluster.config.services.includes("hoarder"),
    })
    : undefined;
  const rollout = new Rollout(tns, {
    prepare: async (record, log) => {
      // Its functions' modules compile while its containers start: its first request finds them compiled.
      const compiled = precompile(record);
      if (runs("substrate") && record.functions.length > 0) runtime.watch(); // see watchIfFunctions below
      const release = await containers.prepare(record, log);
      await compiled;
      cluster?.directory.announceNow(); // other gateways learn at once that its containers run here
      return release;
    },
    admit: async (record) => {
      if (!dv) return;
      const id = (await auth.getProject(record.project)).id;
      for (const fqdn of fqdnsOf(record)) await checkDomain(dv, record.project, id, fqdn);
    },
    keeper: hoarder,
  });
  tns.onFlip(() => containers.sweep().then(() => cluster?.directory.announceNow()));
  // git hosting reports pushes to patrick, which builds through monkey, which reads git: a cycle closed late.
  // deno-lint-ignore prefer-const
  let patrick!: Patrick;
  const git = new GitHosting(dataDir, (e) => patrick.onPush(e).then(() => {}), { maxPushBytes: opts.maxPushBytes });
  const auth = new Auth(state, git);
  // What this node's shape runs (`tau dev`: everything). Services it does not run are not started here.
  const runs = (service: ServiceName) => !opts.shape || opts.shape.services.includes(service);
  // On a cloud, the repos live on every auth and monkey node (services/git/replicate.ts).
  const gitReplicator = cluster && (runs("auth") || runs("monkey"))
    ? new (await import(new URL("./git/replicate.ts", import.meta.url).href) as typeof import("./git/replicate.ts"))
      .GitReplicator({
      hosting: git,
      state,
      libp2p: cluster.p2p.libp2p,
      rpc: cluster.rpc,
      directory: cluster.directory,
      log,
    })
    : undefined;
  if (gitReplicator) {
    git.setReplication(gitReplicator);
    await gitReplicator.start();
  }
  const builder = new ModuleBuilder();
  const monkey = new Monkey({
    git,
    store,
    publish: (r, log) => rollout.publish(r, log),
    kv,
    builder,
    images: (ref, log) => containers.resolveImage(ref, log),
  });
  const patrickCluster = cluster
    ? await import(new URL("./patrick/cluster.ts", import.meta.url).href) as typeof import("./patrick/cluster.ts")
    : undefined;
  // A build on a cloud first makes sure the pushed commit has reached this node.
  const build: typeof monkey.build = async (job, log) => {
    await gitReplicator?.ensureCommit(job.project, job.repo, job.commit);
    return await monkey.build(job, log);
  };
  patrick = new Patrick(state, store, build, {
    echo: opts.echoLogs,
    onFinished: async (job) => await hoarder?.logStored(job),
    ...(cluster && patrickCluster
      ? patrickCluster.patrickClusterOptions({
        directory: cluster.directory,
        rpc: cluster.rpc,
        self: cluster.p2p.peerId,
      })
      : {}),
  });
  if (cluster && patrickCluster && runs("patrick")) await patrickCluster.servePatrick(cluster.p2p.libp2p, patrick);
  if (runs("patrick")) {
    tns.onClaimLost((lost) =>
      patrick.claimLost(lost, () => tns.releaseClaim(lost.fqdn, lost.project))
        .catch((err) => log(`patrick: marking a lost claim: ${err}`))
    );
  }
  /**
   * Compiles a deployment's function modules ahead of their first request, waiting at most PRECOMPILE_WAIT_MS (a
   * deploy is not held up by a slow compile: the first request then joins it). Only where functions are served.
   */
  function precompile(record: DeploymentRecord): Promise<void> {
    if (!runs("substrate") || record.functions.length === 0) return Promise.resolve();
    const done = runtime.prepare(record.functions.map((f) => f.cid));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<void>((resolve) => timer = setTimeout(resolve, PRECOMPILE_WAIT_MS));
    return Promise.race([done, waited]).finally(() => clearTimeout(timer));
  }
  // A deploy made on another node reaches this one as a flip: compile its modules now, not on its first request.
  tns.onFlip((project, branch) => {
    if (project === "*" || branch !== SERVED_BRANCH || !runs("substrate")) return;
    tns.current(project, branch).then((current) => current && precompile(current.record)).catch(() => {});
  });
  const logs = functionLogs(cluster, opts.echoLogs ?? false);
  const runtime = new FunctionRuntime({
    load: (cid) => store.cat(cid),
    inlineBudgetMs: opts.inlineBudgetMs,
    warmExecutor: "after-first-use",
    watchdog: { quarantineFile: join(dataDir, "functions-quarantine") },
    onLog: logs.line,
  });
  // The watchdog Worker starts once this node serves a function (at start, or at the flip that brings the first), so
  // that its boot, which blocks the serving thread, is not paid by that function's first request.
  const watchIfFunctions = async () => {
    if (runtime.workers.watchdog) return;
    if ((await tns.servedRecords()).some((r) => r.functions.length > 0)) runtime.watch();
  };
  if (runs("substrate")) {
    tns.onFlip(() => void watchIfFunctions().catch((err) => log(`substrate: starting the watchdog: ${err}`)));
  }
  const forwarding = cluster
    ? await import(new URL("./gateway/forward.ts", import.meta.url).href) as typeof import("./gateway/forward.ts")
    : undefined;
  const forwarder: Forwarder | undefined = cluster && forwarding
    ? new forwarding.Forwarder(cluster.rpc, cluster.directory, cluster.p2p.peerId)
    : undefined;
  // Secrets, smartops, pubsub, p2p commands, cron: what runs functions besides HTTP routes (services/events).
  const ev = await startEventServices({
    runtime,
    tns,
    state,
    userData: userData.store,
    content: store,
    dataDir,
    swarmKey: opts.shape?.swarmKey,
    cluster,
    runsFunctions: runs("substrate"),
    logs,
    log,
  });
  const gateway = new Gateway({
    tns,
    store,
    runtime,
    containers,
    forwarder,
    forwardAll: !runs("substrate"),
    targets: ev.targets,
    smartops: ev.smartops,
    logs: logs.bus,
    upgrades: ev.upgrades,
  });
  if (cluster && forwarding && runs("substrate")) {
    await forwarding.serveForwarded(
      cluster.p2p.libp2p,
      async (req, host, ip, id, hops) => await gateway.handle(req, host, ip, undefined, { requestId: id, hops }),
    );
  }

  const startedAt = Date.now();
  const api = new Hono();
  api.route(
    "/",
    clusterRoutes(() => cluster, async () => ({
      peer: "local",
      cloud: "local",
      shape: "dev",
      services: [...SERVICES],
      addrs: [],
      http: url,
      ip: hostname,
      load: Math.round((loadavg()[0] / (navigator.hardwareConcurrency || 1)) * 100) / 100,
      freeDiskBytes: await freeBytes(dataDir),
      rssBytes: Deno.memoryUsage().rss,
      startedAt,
    })),
  );
  api.route("/", authRoutes(auth));
  api.route("/", dvRoutes(auth, dv));
  api.route("/", tnsRoutes(tns, rollout, auth));
  api.route("/", patrickRoutes(patrick, { auth, git }));
  api.route("/", hoarderRoutes(() => hoarder, store));
  ev.routes(api, auth);
  const idleTrim = startIdleTrim();
  api.get("/memory", async (c) => c.json(await nodeMemory(() => runtime.workers, idleTrim.trims)));
  const control = new Hono();
  control.onError(errorResponse);
  control.route("/api", api);
  control.route("/git", git.routes());
  control.get("/", (c) => c.text("tau node: API under /api, git under /git/<project>/<repo>.git\n"));
  control.notFound((c) => c.json({ error: `no API route ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

  const controlHosts = new Set(["localhost", "127.0.0.1", "::1", "[::1]", hostname.toLowerCase()]);
  const adminToken = await readAdminToken(opts.shape?.adminTokenFile);
  const controlPlane = (req: Request, peer: string, conn: ConnectionControl): Response | Promise<Response> => {
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const path = pathStart < 0 ? "/" : url.slice(pathStart);
    // Webhooks come from other git hosts, through a proxy, and prove themselves with their signature.
    const webhook = req.method === "POST" && path.startsWith("/api/webhooks/git/");
    // The cloud's admin token opens the control plane from anywhere (remote access; services/access/token.ts).
    const admitted = adminToken !== undefined && sameSecret(bearerOrBasicSecret(req), adminToken);
    if (!webhook && !admitted) {
      const refused = remoteRefusal(req, peer, adminToken !== undefined);
      if (refused) return refused;
    }
    if (path.startsWith("/api/")) {
      const limited = limitBody(req, API_BODY, "the API");
      if (limited instanceof BodyTooLarge) {
        conn.closeSoon();
        return Response.json(limited.toJSON(), { status: 413, headers: closingHeaders(req) });
      }
      if (limited !== req) {
        // A counted body: past the cap the route's read fails and onError answers 413; the rest is not read.
        return Promise.resolve(control.fetch(limited)).then((res) => {
          if (res.status === 413) conn.closeSoon();
          return res;
        });
      }
    }
    return control.fetch(req);
  };

  const server = listen({
    hostname,
    port,
    headerTimeoutMs: opts.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS,
    maxConnections: connectionCap(opts.maxConnections, raiseFdLimit()),
    log: (line) => console.error(line),
  }, (req, info, conn) => {
    const target = requestHost(req);
    if ("error" in target) return requestFailed(400, `bad request: ${target.error}`, gateway.newRequestId());
    const host = target.host;
    if (controlHosts.has(host)) return controlPlane(req, info.remoteAddr.hostname, conn);
    // The client's address costs an op and an object: read only by the routes that forward or proxy it.
    const peer = () => info.remoteAddr.hostname;
    let answer: Response | Promise<Response>;
    try {
      answer = gateway.handle(req, host, peer, conn);
    } catch (err) {
      return gatewayFailed(err, req, host, conn);
    }
    // A warm function or a cached file answers synchronously: Deno's server then skips a promise per request.
    return answer instanceof Promise ? answer.catch((err) => gatewayFailed(err, req, host, conn)) : answer;
  });
  function gatewayFailed(err: unknown, req: Request, host: string, conn: ConnectionControl): Response {
    const id = gateway.newRequestId();
    if (err instanceof BodyTooLarge || err instanceof BodyUnreadable) {
      // The runtime's read of a counted body failed, past its cap or by the client's doing: the rest is not read.
      conn.closeSoon();
      return requestFailed(err.status, err.message, id, closingHeaders(req));
    }
    // Content no peer sent in time is a 503 with its own message, not an internal error.
    if (err instanceof TauError && err.status === 503) return requestFailed(503, err.message, id);
    // A node-side failure (storage, KV) must still answer: one line for the client, the detail in the log.
    console.error(`gateway error for ${host} (request ${id}):`, err);
    return requestFailed(500, `internal error serving ${host}`, id);
  }
  const addr = server.addr as Deno.NetAddr;
  const urlHost = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  url = `http://${urlHost === "0.0.0.0" ? "127.0.0.1" : urlHost}:${addr.port}`;
  ev.listen(hostname, addr.port, (req, host, path, clientIp) => gateway.upgrade(req, host, path, clientIp));
  await cluster?.directory.start();
  // seer: the cloud's DNS on this node's IP and ports.dns (loaded only by shapes that run it).
  const seer = cluster && runs("seer")
    ? await (await import(new URL("./seer/seer.ts", import.meta.url).href) as typeof import("./seer/seer.ts"))
      .startSeer({
        cloud: cluster.config.cloud,
        hostname: cluster.config.ip,
        port: cluster.config.ports.dns,
        directory: cluster.directory,
        tns,
        log: (line) => console.error(line),
      })
    : undefined;
  if (runs("substrate")) await containers.restore();
  if (runs("substrate")) await watchIfFunctions();
  if (runs("patrick")) await patrick.resume();
  if (runs("auth")) await git.recoverInterruptedPushes();

  return {
    url,
    dataDir,
    kv,
    store,
    auth,
    tns,
    patrick,
    git,
    gateway,
    containers,
    events: ev.events,
    pubsub: ev.pubsub,
    cluster,
    async close() {
      git.close(); // a push in flight would hold the shutdown for as long as its upload lasts
      ev.stopTicks();
      await server.shutdown();
      await ev.close();
      await seer?.close();
      await hoarder?.stop();
      patrick.stop();
      gitReplicator?.stop();
      shared?.stop();
      userData.stop();
      await cluster?.stop();
      await containers.close();
      await runtime.close();
      idleTrim.stop();
      builder.close();
      monkey.close();
      await store.close();
      kv.close();
    },
  };
}

/**
 * The API and git hosting have no user accounts yet: only this machine may use them, whatever Host it sends. A
 * request is from this machine when its peer is a loopback address and no proxy relayed it: a reverse proxy on the
 * same host connects from loopback too, so a request carrying a forwarding header is someone else's (the README
 * tells operators that a proxy in front of tau must set one).
 */
function remoteRefusal(req: Request, peer: string, tokenAccepted: boolean): Response | undefined {
  const relayed = forwardingHeader(req.headers);
  if (isLoopback(peer) && !relayed) return undefined;
  if (tokenAccepted) {
    return Response.json({
      error: "the control plane (API, git) needs the cloud's admin token from other machines",
      hint: "tau login --cloud URL --token TOKEN (the token is in the node's keys/admin.token)",
    }, { status: 401, headers: { "www-authenticate": 'Basic realm="tau"' } });
  }
  return Response.json({
    error: relayed
      ? `the control plane (API, git) answers only requests made on this machine, not relayed ones (this one has ${relayed})`
      : "the control plane (API, git) answers only on this machine's loopback",
    hint: "run tau commands on the node itself, or through an SSH tunnel",
  }, { status: 403 });
}

/** Headers a proxy adds (RFC 7239 Forwarded, Via, and the de-facto X-Forwarded-*, X-Real-IP and client-IP ones). */
const FORWARDING = new Set([
  "forwarded",
  "via",
  "x-real-ip",
  "x-client-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "fastly-client-ip",
  "x-cluster-client-ip",
]);

function forwardingHeader(headers: Headers): string | undefined {
  for (const [name] of headers) {
    if (FORWARDING.has(name) || name.startsWith("x-forwarded-")) return name;
  }
  return undefined;
}

function isLoopback(address: string): boolean {
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

/**
 * Connections at most: what was asked, or the default within the open-file limit (raised first, see fd_limit.ts),
 * keeping room for KV, Helia's block files and git and container pipes.
 */
function connectionCap(asked: number | undefined, limit: FdLimit | undefined): number {
  const room = limit ? limit.soft - Math.min(1024, Math.floor(limit.soft / 4)) : Infinity;
  if (asked === undefined) return Math.max(1, Math.min(DEFAULT_MAX_CONNECTIONS, room));
  if (asked > room) {
    console.error(
      `warning: --max-connections ${asked} is more than the open-file limit (${limit!.soft}) leaves room for: ` +
        "accepting will fail before the cap is reached (raise ulimit -n)",
    );
  }
  return asked;
}

async function checkWritable(dir: string) {
  const probe = join(dir, `.probe-${Deno.pid}`);
  try {
    await Deno.writeTextFile(probe, "ok");
    await Deno.remove(probe);
  } catch (err) {
    throw new TauError(`data dir ${dir} is not writable: ${(err as Error).message}`, {
      hint: "pass --data DIR with a writable folder that has free space",
      cause: err,
    });
  }
}
