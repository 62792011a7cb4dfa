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
import { GitHosting } from "./git/hosting.ts";
import { errorResponse, requestFailed } from "./http/errors.ts";
import { API_BODY, BodyTooLarge, BodyUnreadable, closingHeaders, limitBody } from "./http/body.ts";
import { type FdLimit, raiseFdLimit } from "./http/fd_limit.ts";
import { requestHost } from "./http/host.ts";
import { type ConnectionControl, listen } from "./http/listener.ts";
import { Monkey } from "./monkey/build.ts";
import { Patrick } from "./patrick/jobs.ts";
import { patrickRoutes } from "./patrick/routes.ts";
import { Tns } from "./tns/tns.ts";
import { ContainerHost } from "./substrate/containers.ts";
import { tnsRoutes } from "./tns/routes.ts";

export interface NodeOptions {
  dataDir: string;
  /** host:port to listen on; port 0 picks a free one. */
  http: string;
  /** Print build logs and function logs to this process's terminal. */
  echoLogs?: boolean;
  inlineBudgetMs?: number;
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
  const store = await openContentStore(join(dataDir, "storage"));
  const tns = new Tns(kv, store);
  // substrate: the containers of every served deployment, started before TNS points at them (see containers.ts).
  const containers = new ContainerHost({
    dataDir: join(dataDir, "containers"),
    wanted: () => tns.servedRecords(),
    log: (line) => console.error(line),
    echo: opts.echoLogs ? (name, line) => console.error(`[container ${name}] ${line}`) : undefined,
  });
  tns.setPreparer((record, log) => containers.prepare(record, log));
  tns.onFlip(() => containers.sweep());
  // git hosting reports pushes to patrick, which builds through monkey, which reads git: a cycle closed late.
  // deno-lint-ignore prefer-const
  let patrick!: Patrick;
  const git = new GitHosting(dataDir, (e) => patrick.onPush(e).then(() => {}), { maxPushBytes: opts.maxPushBytes });
  const auth = new Auth(kv, git);
  const builder = new ModuleBuilder();
  builder.warm();
  const monkey = new Monkey({ git, store, tns, kv, builder, images: (ref, log) => containers.resolveImage(ref, log) });
  patrick = new Patrick(kv, store, monkey.build, { echo: opts.echoLogs });
  const runtime = new FunctionRuntime({
    load: (cid) => store.cat(cid),
    inlineBudgetMs: opts.inlineBudgetMs,
    warmExecutor: true,
    watchdog: { quarantineFile: join(dataDir, "functions-quarantine") },
    onLog: opts.echoLogs ? (l) => console.error(`[fn ${l.fn} ${l.requestId}] ${l.stream}: ${l.text}`) : undefined,
  });
  const gateway = new Gateway({ tns, store, runtime, containers });

  const api = new Hono();
  api.route("/", authRoutes(auth));
  api.route("/", tnsRoutes(tns, auth));
  api.route("/", patrickRoutes(patrick, { auth, git }));
  const control = new Hono();
  control.onError(errorResponse);
  control.route("/api", api);
  control.route("/git", git.routes());
  control.get("/", (c) => c.text("tau node: API under /api, git under /git/<project>/<repo>.git\n"));
  control.notFound((c) => c.json({ error: `no API route ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

  const controlHosts = new Set(["localhost", "127.0.0.1", "::1", "[::1]", hostname.toLowerCase()]);
  const controlPlane = (req: Request, peer: string, conn: ConnectionControl): Response | Promise<Response> => {
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const path = pathStart < 0 ? "/" : url.slice(pathStart);
    // Webhooks come from other git hosts, through a proxy, and prove themselves with their signature.
    const webhook = req.method === "POST" && path.startsWith("/api/webhooks/git/");
    if (!webhook) {
      const refused = remoteRefusal(req, peer);
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
    const peer = info.remoteAddr.hostname;
    const target = requestHost(req);
    if ("error" in target) return requestFailed(400, `bad request: ${target.error}`, gateway.newRequestId());
    const host = target.host;
    if (controlHosts.has(host)) return controlPlane(req, peer, conn);
    return gateway.handle(req, host, peer, conn).catch((err) => {
      const id = gateway.newRequestId();
      if (err instanceof BodyTooLarge || err instanceof BodyUnreadable) {
        // The runtime's read of a counted body failed, past its cap or by the client's doing: the rest is not read.
        conn.closeSoon();
        return requestFailed(err.status, err.message, id, closingHeaders(req));
      }
      // A node-side failure (storage, KV) must still answer: one line for the client, the detail in the log.
      console.error(`gateway error for ${host} (request ${id}):`, err);
      return requestFailed(500, `internal error serving ${host}`, id);
    });
  });
  const addr = server.addr as Deno.NetAddr;
  const urlHost = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `http://${urlHost === "0.0.0.0" ? "127.0.0.1" : urlHost}:${addr.port}`;
  await containers.restore();
  await patrick.resume();
  await git.recoverInterruptedPushes();

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
    async close() {
      git.close(); // a push in flight would hold the shutdown for as long as its upload lasts
      await server.shutdown();
      await containers.close();
      await runtime.close();
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
function remoteRefusal(req: Request, peer: string): Response | undefined {
  const relayed = forwardingHeader(req.headers);
  if (isLoopback(peer) && !relayed) return undefined;
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
