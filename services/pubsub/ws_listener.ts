/**
 * The node's WebSocket port: a Deno.serve listener that takes only WebSocket upgrades, to the pubsub bridge
 * (`/ws-<hash>/<channel>`) and to containers' routes (websocket.ts says why they cannot share the HTTP listener). It
 * binds next to the HTTP listener: port + 1 when that port is fixed and free, else a free port (logged);
 * getWebSocketURL names it, so browsers need not guess. Anything that is not a WebSocket upgrade is answered 400, so
 * this port is no second way into the gateway.
 */
import { requestFailed } from "../http/errors.ts";
import { requestHost } from "../http/host.ts";

export interface WsListener {
  port: number;
  shutdown(): Promise<void>;
}

export function listenWebSockets(
  opts: { hostname: string; httpPort: number; log: (line: string) => void },
  upgrade: (req: Request, host: string, path: string, clientIp: string) => Response | Promise<Response>,
): WsListener {
  const handler = (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response | Promise<Response> => {
    const target = requestHost(req);
    if ("error" in target) return requestFailed(400, `bad request: ${target.error}`, "-");
    const url = new URL(req.url);
    if (req.method !== "GET" || req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return requestFailed(400, "this port serves WebSocket upgrades only (the pubsub bridge, containers)", "-");
    }
    return upgrade(req, target.host, url.pathname, info.remoteAddr.hostname);
  };
  const onError = (err: unknown) => {
    opts.log(`pubsub: WebSocket request failed: ${err instanceof Error ? err.message : String(err)}`);
    return requestFailed(500, "internal error", "-");
  };
  const serve = (port: number) => Deno.serve({ hostname: opts.hostname, port, onListen() {}, onError }, handler);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = serve(opts.httpPort === 0 || opts.httpPort === 65535 ? 0 : opts.httpPort + 1);
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    server = serve(0);
    opts.log(`pubsub: port ${opts.httpPort + 1} is taken; WebSockets are served on port ${server.addr.port}`);
  }
  return { port: server.addr.port, shutdown: () => server.shutdown() };
}
