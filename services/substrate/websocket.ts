/**
 * WebSockets to containers: the gateway accepts the client's upgrade (Deno.upgradeWebSocket) and relays messages to
 * a WebSocket it opens to the container over the Unix socket its port is published on (npm:ws speaks `ws+unix:`; the
 * gateway has no raw upgrade to TCP). The upstream connects first, so a container that refuses the upgrade answers
 * the client with an HTTP error instead of a socket that closes at once. Messages keep their kind (text or binary),
 * close codes pass through both ways, and a side that does not read is dropped once MAX_BUFFERED bytes wait for it,
 * rather than buffered without bound. Relayed sockets do not hold a retiring container: it is stopped after its
 * drain time as for any long request. Imported on the first upgrade only: npm:ws loads Node's http, net and tls
 * modules, which a node without container WebSockets need not hold.
 */
import WebSocket from "ws";
import { requestFailed } from "../http/errors.ts";

/** Bytes waiting to be sent to one side before the relay gives up on it (a client or container that stopped reading). */
const MAX_BUFFERED = 8 << 20;
/** Largest message relayed (ws's default is 100 MB). */
const MAX_MESSAGE = 16 << 20;
const HANDSHAKE_MS = 10_000;

/** Headers of the upgrade request that describe the hop or the handshake itself: ws writes its own. */
const NOT_RELAYED = new Set([
  "connection",
  "upgrade",
  "host",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "keep-alive",
  "transfer-encoding",
  "te",
]);

/** A close code the other side may be sent (1005, 1006 and 1015 are reserved for reporting, never sent). */
function sendable(code: number | undefined): number {
  return code !== undefined && (code === 1000 || (code >= 1001 && code <= 1014 && ![1005, 1006].includes(code)) ||
      (code >= 3000 && code <= 4999))
    ? code
    : 1000;
}

export function relayWebSocket(
  req: Request,
  socketPath: string,
  opts: { host: string; requestId: string; clientIp?: string; name: string },
): Promise<Response> {
  const url = req.url;
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  const target = pathStart < 0 ? "/" : url.slice(pathStart);
  const headers: Record<string, string> = { host: opts.host, "x-request-id": opts.requestId };
  req.headers.forEach((value, name) => {
    if (!NOT_RELAYED.has(name) && !name.startsWith("x-forwarded-") && name !== "x-request-id") headers[name] = value;
  });
  headers["x-forwarded-host"] = opts.host;
  if (opts.clientIp) headers["x-forwarded-for"] = opts.clientIp;
  const protocols = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  const upstream = new WebSocket(`ws+unix://${socketPath}:${target}`, protocols, {
    headers,
    perMessageDeflate: false,
    handshakeTimeout: HANDSHAKE_MS,
    maxPayload: MAX_MESSAGE,
  });
  return new Promise<Response>((resolve) => {
    let settled = false;
    const fail = (status: number, why: string) => {
      if (settled) return;
      settled = true;
      upstream.terminate();
      resolve(requestFailed(status, `container ${opts.name} ${why}`, opts.requestId));
    };
    upstream.once("unexpected-response", (_req: unknown, res: { statusCode?: number }) => {
      fail(502, `refused the WebSocket upgrade (it answered ${res.statusCode ?? "?"})`);
    });
    upstream.once("error", (err: Error) => fail(502, `did not accept a WebSocket: ${err.message}`));
    upstream.once("open", () => {
      if (settled) return;
      settled = true;
      let client: WebSocket | globalThis.WebSocket;
      let response: Response;
      try {
        ({ socket: client, response } = Deno.upgradeWebSocket(req, {
          ...(upstream.protocol ? { protocol: upstream.protocol } : {}),
          idleTimeout: 0,
        }));
      } catch (err) {
        upstream.terminate();
        resolve(requestFailed(400, `bad WebSocket upgrade: ${(err as Error).message}`, opts.requestId));
        return;
      }
      const browser = client as globalThis.WebSocket;
      browser.binaryType = "arraybuffer";
      const early: (string | ArrayBuffer)[] = [];
      let clientOpen = false;
      browser.onopen = () => {
        clientOpen = true;
        for (const m of early.splice(0)) browser.send(m);
      };
      upstream.on("message", (data: Uint8Array | Uint8Array[] | ArrayBuffer, isBinary: boolean) => {
        const bytes = Array.isArray(data) ? Buffer.concat(data) : data;
        const message = isBinary
          ? new Uint8Array(bytes as ArrayBuffer).slice().buffer
          : new TextDecoder().decode(bytes as Uint8Array);
        if (!clientOpen) return void early.push(message);
        if (browser.bufferedAmount > MAX_BUFFERED) {
          browser.close(1013, "client too slow");
          upstream.close(1013, "client too slow");
          return;
        }
        browser.send(message);
      });
      browser.onmessage = (e: MessageEvent) => {
        if (upstream.readyState !== WebSocket.OPEN) return;
        if (upstream.bufferedAmount > MAX_BUFFERED) {
          browser.close(1013, "container too slow");
          upstream.close(1013, "client's messages not read");
          return;
        }
        upstream.send(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
      };
      upstream.on("close", (code: number, reason: Uint8Array) => {
        if (browser.readyState <= 1) browser.close(sendable(code), new TextDecoder().decode(reason).slice(0, 120));
      });
      browser.onclose = (e: CloseEvent) => {
        if (upstream.readyState <= 1) upstream.close(sendable(e.code), e.reason.slice(0, 120));
      };
      browser.onerror = () => upstream.terminate();
      resolve(response);
    });
  });
}
