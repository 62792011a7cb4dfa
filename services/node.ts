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
import { GitHosting } from "./git/hosting.ts";
import { errorResponse, requestFailed } from "./http/errors.ts";
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
  const git = new GitHosting(dataDir, (e) => patrick.onPush(e).then(() => {}));
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
  const server = Deno.serve({ hostname, port, onListen: () => {} }, (req, info) => {
    const hostHeader = req.headers.get("host") ?? "";
    const host = hostHeader.replace(/:\d+$/, "").toLowerCase();
    if (controlHosts.has(host)) {
      // The API and git hosting have no user accounts yet: only this machine may use them, whatever Host it sends.
      if (isLoopback((info.remoteAddr as Deno.NetAddr).hostname)) return control.fetch(req);
      return Response.json({
        error: "the control plane (API, git) answers only on this machine's loopback",
        hint: "run tau commands on the node itself, or through an SSH tunnel",
      }, { status: 403 });
    }
    return gateway.handle(req, host, (info.remoteAddr as Deno.NetAddr).hostname).catch((err) => {
      // A node-side failure (storage, KV) must still answer: one line for the client, the detail in the log.
      const id = gateway.newRequestId();
      console.error(`gateway error for ${host} (request ${id}):`, err);
      return requestFailed(500, `internal error serving ${host}`, id);
    });
  });
  const addr = server.addr as Deno.NetAddr;
  const urlHost = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = `http://${urlHost === "0.0.0.0" ? "127.0.0.1" : urlHost}:${addr.port}`;
  await containers.restore();
  await patrick.resume();

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
      await server.shutdown();
      await containers.close();
      await runtime.close();
      builder.close();
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
