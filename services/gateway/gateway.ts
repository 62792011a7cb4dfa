/**
 * The gateway: Host + path -> TNS -> CID -> a function call or a website file, or a deployed container (proxied).
 * Route tables live in a hot in-memory cache per host; TNS (Deno KV + Helia) fills it on a miss, and every TNS
 * pointer flip drops the flipped project's entries, so a deploy or rollback is visible on the next request.
 */
import type { ContentStore } from "../../runtime/storage/helia.ts";
import type { FunctionRuntime } from "../../runtime/wasm/mod.ts";
import type { FunctionTargets } from "../substrate/targets.ts";
import type { Tns } from "../tns/tns.ts";
import type { ContainerHost } from "../substrate/containers.ts";
import { compileRoutes, type HostRoutes, matchRoute, type RouteMatch } from "./routes.ts";
import type { SmartopGuard } from "../smartops/guard.ts";
import type { LogBus } from "../logs/bus.ts";
import { isWebSocketUpgrade } from "../http/upgrade.ts";
import { WebsiteFiles } from "./files.ts";
import { requestFailed } from "../http/errors.ts";
import type { Forwarder } from "./forward.ts";
import { BodyTooLarge, closingHeaders, DEFAULT_FUNCTION_BODY, limitBody } from "../http/body.ts";
import type { ConnectionControl } from "../http/listener.ts";
import type { DeploymentRecord } from "../tns/records.ts";

/** Serves a WebSocket upgrade on a project's host (services/pubsub/websocket.ts), on the node's WebSocket port. */
export interface UpgradeHandler {
  wants(req: Request, path: string): boolean;
  handle(req: Request, record: DeploymentRecord, path: string, requestId: string): Response;
  /** Why an upgrade on the HTTP port is refused, and where to go instead. */
  refusal(): string;
}

export class Gateway {
  #tns: Tns;
  #runtime: FunctionRuntime;
  #files: WebsiteFiles;
  #containers?: ContainerHost;
  /** Set on a cloud: requests for containers that run on another node go there (forward.ts). */
  #forwarder?: Forwarder;
  /** On a node that serves HTTP but runs no substrate: every request goes to a substrate node. */
  #forwardAll: boolean;
  #hosts = new Map<string, HostRoutes | null>();
  #loading = new Map<string, Promise<HostRoutes | null>>();
  #requestPrefix = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  #requests = 0;
  /** Bumped on every flip: a route load that started before a flip must not cache what it read. */
  #generation = 0;
  /** Per deployed function, what every call of it passes to the runtime. */
  #targets: FunctionTargets;
  #smartops?: SmartopGuard;
  #logs?: LogBus;
  #upgrades?: UpgradeHandler;

  constructor(
    deps: {
      tns: Tns;
      store: ContentStore;
      runtime: FunctionRuntime;
      containers?: ContainerHost;
      forwarder?: Forwarder;
      forwardAll?: boolean;
      /** Shared with the event triggers (services/substrate/targets.ts). */
      targets: FunctionTargets;
      /** Runs the smartops of guarded resources before them. */
      smartops?: SmartopGuard;
      /** Function request lines for `tau logs --follow`. */
      logs?: LogBus;
      /** WebSocket upgrades (the pubsub bridge), served on every node: never forwarded. */
      upgrades?: UpgradeHandler;
    },
  ) {
    this.#logs = deps.logs;
    this.#targets = deps.targets;
    this.#smartops = deps.smartops;
    this.#upgrades = deps.upgrades;
    this.#tns = deps.tns;
    this.#forwarder = deps.forwarder;
    this.#forwardAll = deps.forwardAll ?? false;
    this.#containers = deps.containers;
    this.#runtime = deps.runtime;
    this.#files = new WebsiteFiles(deps.store);
    deps.tns.onFlip((project) => {
      this.#generation++;
      this.#loading.clear(); // later requests must not join a load that read the old pointer
      for (const [host, routes] of this.#hosts) {
        // Unknown hosts (null) may just have been claimed by this deploy: drop them too.
        if (!routes || routes.project === project || project === "*") this.#hosts.delete(host);
      }
    });
  }

  newRequestId(): string {
    return `${this.#requestPrefix}-${(this.#requests++).toString(36)}`;
  }

  /**
   * `clientIp`: the client's address, or a function that reads it (only the routes that forward or proxy need it).
   * `opts.requestId`: a request forwarded from another gateway keeps its id; `opts.hops`: how many gateways
   * forwarded it. A forwarded request is served here, except a container's that runs elsewhere (forward.ts).
   * Synchronous when it can be (a cached route to a warm function or a cached file): no promise per request.
   */
  handle(
    req: Request,
    host: string,
    clientIp?: string | (() => string),
    conn?: ConnectionControl,
    opts: { requestId?: string; hops?: number } = {},
  ): Response | Promise<Response> {
    const requestId = opts.requestId ?? this.newRequestId();
    if (this.#forwardAll && this.#forwarder && !opts.requestId) {
      return this.#forwarder.forward(req, host, requestId, ipOf(clientIp));
    }
    const routes = this.#hosts.get(host);
    if (routes === undefined && !this.#hosts.has(host)) {
      return this.#load(host).then((loaded) => this.#route(req, host, loaded, requestId, clientIp, conn, opts.hops));
    }
    return this.#route(req, host, routes ?? null, requestId, clientIp, conn, opts.hops);
  }

  #route(
    req: Request,
    host: string,
    routes: HostRoutes | null,
    requestId: string,
    clientIp: string | (() => string) | undefined,
    conn: ConnectionControl | undefined,
    hops: number | undefined,
  ): Response | Promise<Response> {
    const url = req.url;
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    const queryStart = url.indexOf("?", pathStart);
    const path = pathStart < 0 ? "/" : url.slice(pathStart, queryStart < 0 ? undefined : queryStart);
    if (!routes) return notFound(`no project serves host ${host}`, requestId);
    if (this.#upgrades?.wants(req, path)) return requestFailed(400, this.#upgrades.refusal(), requestId);
    const match = matchRoute(routes, req.method, path);
    // One property read on the hot path; a guarded resource waits for its smartops first (services/smartops).
    const guards = match.kind === "function"
      ? match.fn.smartops
      : match.kind === "website"
      ? match.site.smartops
      : match.kind === "container"
      ? match.container.smartops
      : undefined;
    if (guards && this.#smartops) {
      const resource = match.kind === "function"
        ? `function/${label(match.fn)}`
        : match.kind === "website"
        ? `website/${label(match.site)}`
        : `container/${label((match as { container: { name: string; app?: string } }).container)}`;
      const input = {
        method: req.method,
        path,
        query: queryStart < 0 ? "" : url.slice(queryStart + 1),
        headers: req.headers,
        body: null,
        params: match.kind === "function" ? match.params : {},
        requestId,
      };
      return this.#smartops.check(routes.record, guards, resource, input).then((denial) =>
        denial
          ? requestFailed(403, `denied by smartop ${denial.smartop}: ${denial.reason}`, requestId)
          : this.#serve(req, host, routes, match, path, queryStart, requestId, clientIp, conn, hops)
      );
    }
    return this.#serve(req, host, routes, match, path, queryStart, requestId, clientIp, conn, hops);
  }

  #serve(
    req: Request,
    host: string,
    routes: HostRoutes,
    match: RouteMatch,
    path: string,
    queryStart: number,
    requestId: string,
    clientIp: string | (() => string) | undefined,
    conn: ConnectionControl | undefined,
    hops: number | undefined,
    /** From the node's WebSocket port (upgrade()): a container's WebSocket may be relayed. */
    webSocketPort = false,
  ): Response | Promise<Response> {
    const url = req.url;
    switch (match.kind) {
      case "function": {
        // Before the runtime, which buffers the whole body: over its cap it gets 413, unread (a counted body that
        // overflows fails the runtime's read with BodyTooLarge, which the node answers the same way).
        const fn = match.fn;
        const limited = limitBody(req, fn.bodyBytes ?? DEFAULT_FUNCTION_BODY, `function ${fn.name}`);
        if (limited instanceof BodyTooLarge) {
          conn?.closeSoon();
          return requestFailed(413, limited.message, requestId, closingHeaders(req));
        }
        const answer = this.#runtime.invoke(
          this.#targets.of(routes.record, fn),
          limited,
          { params: match.params, requestId, path, query: queryStart < 0 ? "" : url.slice(queryStart + 1) },
        );
        // A request line only while someone follows the project's logs (services/logs): one Set lookup otherwise.
        if (!this.#logs?.watched(routes.project)) return answer;
        return requestLine(this.#logs, routes.project, label(fn), req.method, path, requestId, answer);
      }
      case "website":
        return this.#files.serve(req, match.site, match.rest, requestId);
      case "container": {
        const c = match.container;
        const ip = ipOf(clientIp);
        if (!webSocketPort && isWebSocketUpgrade(req)) {
          // Deno's per-connection server (the HTTP listener) closes an upgraded socket at once: see websocket.ts.
          const where = this.#upgrades ? this.#upgrades.refusal() : "this node serves no WebSockets";
          return requestFailed(400, where, requestId);
        }
        if (this.#forwarder && !this.#containers?.has(c.key)) {
          if (isWebSocketUpgrade(req)) {
            return requestFailed(
              503,
              `container ${c.name} does not run on this node, and WebSockets are relayed only by a node that runs it`,
              requestId,
            );
          }
          return this.#forwarder.forwardContainer(req, c, { host, requestId, clientIp: ip, hops: hops ?? 0 });
        }
        if (!this.#containers) return notFound(`containers are not served by this node`, requestId);
        return this.#containers.proxy(req, c, { host, requestId, clientIp: ip });
      }
      case "bad-path":
        return requestFailed(
          400,
          `bad request: ${shown(match.segment)} in ${shown(path)} is not valid percent-encoding`,
          requestId,
        );
      case "method":
        return requestFailed(405, `method ${req.method} not allowed on ${path}`, requestId, {
          allow: match.allow.join(", "),
        });
      default:
        return notFound(`no route for ${host}${path}`, requestId);
    }
  }

  /**
   * A WebSocket upgrade for `host` (from the node's WebSocket port): served here whatever the node's shape, since
   * the message bus runs on every node.
   */
  async upgrade(req: Request, host: string, path: string, clientIp?: string): Promise<Response> {
    const requestId = this.newRequestId();
    if (!this.#upgrades) return notFound("this node serves no WebSockets", requestId);
    const routes = this.#hosts.has(host) ? this.#hosts.get(host)! : await this.#load(host);
    if (!routes) return notFound(`no project serves host ${host}`, requestId);
    if (this.#upgrades.wants(req, path)) return this.#upgrades.handle(req, routes.record, path, requestId);
    // A container's route: its WebSockets are relayed here (services/substrate/websocket.ts), smartops first.
    const match = matchRoute(routes, req.method, path);
    if (match.kind !== "container") {
      return notFound(
        `no WebSocket route for ${host}${path}: only pubsub channels and containers take WebSockets`,
        requestId,
      );
    }
    const c = match.container;
    if (c.smartops?.length && this.#smartops) {
      const input = { method: req.method, path, query: "", headers: req.headers, body: null, params: {}, requestId };
      const denial = await this.#smartops.check(routes.record, c.smartops, `container/${label(c)}`, input);
      if (denial) return requestFailed(403, `denied by smartop ${denial.smartop}: ${denial.reason}`, requestId);
    }
    return await this.#serve(req, host, routes, match, path, -1, requestId, clientIp, undefined, 0, true);
  }

  #load(host: string): Promise<HostRoutes | null> {
    let pending = this.#loading.get(host);
    if (!pending) {
      const generation = this.#generation;
      pending = (async () => {
        const owner = await this.#tns.resolveHost(host);
        const current = owner ? await this.#tns.current(owner.project, owner.branch) : null;
        if (!current) {
          this.#remember(host, null, generation);
          return null;
        }
        // Only the asked host is cached: the record's other hosts are looked up (and ownership checked) on their own.
        const routes = compileRoutes(current.record).get(host) ?? null;
        this.#remember(host, routes, generation);
        return routes;
      })();
      const mine = pending;
      mine.finally(() => {
        if (this.#loading.get(host) === mine) this.#loading.delete(host);
      }).catch(() => {}); // the caller handles the rejection; this side chain must not be an unhandled one
      this.#loading.set(host, pending);
    }
    return pending;
  }

  #remember(host: string, routes: HostRoutes | null, generation: number) {
    if (generation !== this.#generation) return;
    if (this.#hosts.size > 100_000) this.#hosts.clear();
    this.#hosts.set(host, routes);
  }
}

/** Emits "GET /path 200 1.2ms" for `project` once the function answered. */
function requestLine(
  logs: LogBus,
  project: string,
  fn: string,
  method: string,
  path: string,
  requestId: string,
  answer: Response | Promise<Response>,
): Response | Promise<Response> {
  const started = performance.now();
  const done = (res: Response) => {
    const ms = (performance.now() - started).toFixed(1);
    logs.emit({ project, fn, requestId, stream: "request", text: `${method} ${path} ${res.status} ${ms}ms` });
    return res;
  };
  return answer instanceof Promise ? answer.then(done) : done(answer);
}

function label(r: { name: string; app?: string }): string {
  return r.app ? `${r.app}/${r.name}` : r.name;
}

function ipOf(clientIp: string | (() => string) | undefined): string | undefined {
  return typeof clientIp === "function" ? clientIp() : clientIp;
}

function shown(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

function notFound(message: string, requestId: string): Response {
  return requestFailed(404, message, requestId);
}
