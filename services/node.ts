/**
 * One tau node: every service the shape enables, on one HTTP listener. The local cloud (`tau dev`) enables all of
 * them in one process; services talk through plain method calls here, the same interfaces a multi-node cloud puts
 * on libp2p. Requests for the node's own host (127.0.0.1, localhost) with /api or /git go to the control plane;
 * every other Host header goes to the gateway.
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
import { Monkey } from "./monkey/build.ts";
import { Patrick } from "./patrick/jobs.ts";
import { patrickRoutes } from "./patrick/routes.ts";
import { Tns } from "./tns/tns.ts";
import { adoptOldKeys } from "./kvdb/migrate.ts";
import { Rollout } from "./rollout/rollout.ts";
import { checkDomain, type DvOptions, readDvKeys } from "./dv/dv.ts";
import { dvRoutes } from "./dv/routes.ts";
import { fqdnsOf } from "./tns/records.ts";
import { Kvdb } from "./kvdb/store.ts";
import { ReplicaStore } from "./kvdb/mod.ts";
import { ContainerHost } from "./substrate/containers.ts";
import { tnsRoutes } from "./tns/routes.ts";
import type { ShapeConfig } from "./config/shape.ts";
// The multi-node modules (libp2p, gossipsub, RPC) load only for a shaped node: `tau dev` starts without them.
import type { Cluster } from "./cluster/cluster.ts";
import { bearerOrBasicSecret, readAdminToken, sameSecret } from "./access/token.ts";
import { clusterRoutes } from "./cluster/routes.ts";
import { type ServiceName, SERVICES } from "./config/services.ts";
import { freeBytes } from "../runtime/storage/space.ts";
import { loadavg } from "node:os";
import { Hoarder } from "./hoarder/hoarder.ts";
import { readHoarderSettings } from "./hoarder/settings.ts";
import { hoarderRoutes } from "./hoarder/routes.ts";

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
}

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
  const hoarderSettings = opts.shape ? await readHoarderSettings(opts.shape.file) : undefined;
  await adoptOldKeys(kv, kvdb);
  // Filled in once the listener is bound (port 0 picks one); the directory reads it at each heartbeat.
  let url = "";
  const log = (line: string) => console.error(line);
  const cluster = opts.shape
    ? await (await import("./cluster/cluster.ts")).startCluster(opts.shape, { kv, httpUrl: () => url, dataDir, log })
    : undefined;
  const shared = cluster ? await (await import("./cluster/state.ts")).clusterState(cluster, kvdb, log) : undefined;
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
  const dv: DvOptions | undefined = opts.shape?.dv
    ? {
      keys: await readDvKeys(opts.shape.dv.privateKeyFile, opts.shape.dv.publicKeyFile),
      generated: opts.shape.generatedDomain,
      resolver: opts.shape.dv.resolver,
    }
    : undefined;
  // hoarder: on a cloud, publishes wait for copies on other nodes; a node whose shape runs it keeps copies.
  const hoarder = cluster && hoarderSettings
    ? await Hoarder.start({
      cluster,
      state,
      store,
      kv,
      tns,
      settings: hoarderSettings,
      keeps: cluster.config.services.includes("hoarder"),
    })
    : undefined;
  const rollout = new Rollout(tns, {
    prepare: (record, log) => containers.prepare(record, log),
    admit: async (record) => {
      if (!dv) return;
      const id = (await auth.getProject(record.project)).id;
      for (const fqdn of fqdnsOf(record)) await checkDomain(dv, record.project, id, fqdn);
    },
    keeper: hoarder,
  });
  tns.onFlip(() => containers.sweep());
  // git hosting reports pushes to patrick, which builds through monkey, which reads git: a cycle closed late.
  // deno-lint-ignore prefer-const
  let patrick!: Patrick;
  const git = new GitHosting(dataDir, (e) => patrick.onPush(e).then(() => {}), { maxPushBytes: opts.maxPushBytes });
  const auth = new Auth(state, git);
  // What this node's shape runs (`tau dev`: everything). Services it does not run are not started here.
  const runs = (service: ServiceName) => !opts.shape || opts.shape.services.includes(service);
  // On a cloud, the repos live on every auth and monkey node (services/git/replicate.ts).
  const gitReplicator = cluster && (runs("auth") || runs("monkey"))
    ? new (await import("./git/replicate.ts")).GitReplicator({
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
  if (runs("monkey")) builder.warm();
  const monkey = new Monkey({
    git,
    store,
    publish: (r, log) => rollout.publish(r, log),
    kv,
    builder,
    images: (ref, log) => containers.resolveImage(ref, log),
  });
  const patrickCluster = cluster ? await import("./patrick/cluster.ts") : undefined;
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
  const runtime = new FunctionRuntime({
    load: (cid) => store.cat(cid),
    inlineBudgetMs: opts.inlineBudgetMs,
    warmExecutor: true,
    onLog: opts.echoLogs ? (l) => console.error(`[fn ${l.fn} ${l.requestId}] ${l.stream}: ${l.text}`) : undefined,
  });
  const forwarding = cluster ? await import("./gateway/forward.ts") : undefined;
  let forwarder: Forwarder | undefined;
  if (cluster && forwarding && !runs("substrate")) forwarder = new forwarding.Forwarder(cluster.rpc, cluster.directory);
  const gateway = new Gateway({ tns, store, runtime, containers, forwarder });
  if (cluster && forwarding && runs("substrate")) {
    await forwarding.serveForwarded(
      cluster.p2p.libp2p,
      (req, host, ip, id) => gateway.handle(req, host, ip, { requestId: id }),
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
  const control = new Hono();
  control.onError(errorResponse);
  control.route("/api", api);
  control.route("/git", git.routes());
  control.get("/", (c) => c.text("tau node: API under /api, git under /git/<project>/<repo>.git\n"));
  control.notFound((c) => c.json({ error: `no API route ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

  const controlHosts = new Set(["localhost", "127.0.0.1", "::1", "[::1]", hostname.toLowerCase()]);
  const adminToken = await readAdminToken(opts.shape?.adminTokenFile);
  const server = Deno.serve({ hostname, port, onListen: () => {} }, (req, info) => {
    const hostHeader = req.headers.get("host") ?? "";
    const host = hostHeader.replace(/:\d+$/, "").toLowerCase();
    if (controlHosts.has(host)) {
      // The API and git hosting have no user accounts yet: only this machine may use them, whatever Host it sends.
      if (isLoopback((info.remoteAddr as Deno.NetAddr).hostname)) return control.fetch(req);
      if (adminToken && sameSecret(bearerOrBasicSecret(req), adminToken)) return control.fetch(req);
      const headers = adminToken ? { "www-authenticate": 'Basic realm="tau"' } : undefined;
      return Response.json({
        error: adminToken
          ? "the control plane (API, git) needs the cloud's admin token from other machines"
          : "the control plane (API, git) answers only on this machine's loopback",
        hint: adminToken
          ? "tau login --cloud URL --token TOKEN (the token is in the node's keys/admin.token)"
          : "run tau commands on the node itself, or through an SSH tunnel",
      }, { status: adminToken ? 401 : 403, headers });
    }
    return gateway.handle(req, host, (info.remoteAddr as Deno.NetAddr).hostname).catch((err) => {
      // A node-side failure (storage, KV) must still answer: one line for the client, the detail in the log.
      const id = gateway.newRequestId();
      // Content no peer sent in time is a 503 with its own message, not an internal error.
      if (err instanceof TauError && err.status === 503) return requestFailed(503, err.message, id);
      console.error(`gateway error for ${host} (request ${id}):`, err);
      return requestFailed(500, `internal error serving ${host}`, id);
    });
  });
  const addr = server.addr as Deno.NetAddr;
  const urlHost = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  url = `http://${urlHost === "0.0.0.0" ? "127.0.0.1" : urlHost}:${addr.port}`;
  await cluster?.directory.start();
  // seer: the cloud's DNS on this node's IP and ports.dns (loaded only by shapes that run it).
  const seer = cluster && runs("seer")
    ? await (await import("./seer/seer.ts")).startSeer({
      cloud: cluster.config.cloud,
      hostname: cluster.config.ip,
      port: cluster.config.ports.dns,
      directory: cluster.directory,
      tns,
      log: (line) => console.error(line),
    })
    : undefined;
  if (runs("substrate")) await containers.restore();
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
    cluster,
    async close() {
      git.close(); // a push in flight would hold the shutdown for as long as its upload lasts
      await server.shutdown();
      await seer?.close();
      await hoarder?.stop();
      patrick.stop();
      gitReplicator?.stop();
      shared?.stop();
      await cluster?.stop();
      await containers.close();
      await runtime.close();
      builder.close();
      monkey.close();
      await store.close();
      kv.close();
    },
  };
}

function isLoopback(address: string): boolean {
  return address === "::1" || address.startsWith("127.") || address === "::ffff:127.0.0.1";
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
