/**
 * The WebSocket bridge: a browser opens `ws://<a domain of the project>:<ws port>/ws-<hash>/<channel>` (the URL
 * getWebSocketURL answers), receives every message of the channel and publishes what it sends. Only for channels
 * whose messaging resource sets `bridges.websocket.enable`; anything else is refused with a clear HTTP answer before
 * the upgrade. Every node serves it (the bus is on every node), so a gateway-only node does not forward the socket.
 *
 * Why a port of its own (ws_listener.ts): the node's HTTP listener serves each connection with Deno's per-connection
 * server (services/http/listener.ts), and Deno 2.9 force-closes every WebSocket upgraded on such a server as soon
 * as its connection's HTTP part ends, which for an upgrade is right after the 101 (op_http_close(false) applies
 * the server's WebSocket registry shutdown, added in Deno 2.9.0). A Deno.serve listener keeps them open.
 *
 * Frames out: text when the message is valid UTF-8, else binary. Each client's queue is bounded: a client whose
 * unsent bytes pass MAX_QUEUED_BYTES is closed with 1013 ("try again later"), never buffered without bound. A frame
 * over the message limit closes the socket with 1009; a malformed frame is Deno's to refuse (it closes that socket):
 * the node and the other clients go on.
 */
import { requestFailed } from "../http/errors.ts";
import type { DeploymentRecord } from "../tns/records.ts";
import { MAX_MESSAGE_BYTES, type PubsubBus, type PubsubMessage } from "./bus.ts";
import { type ChannelRef, resolveChannel, scopeHash } from "./channels.ts";

/** Unsent bytes a client may have queued; past it the client is too slow and is dropped. */
export const MAX_QUEUED_BYTES = 4 << 20;
const TRY_AGAIN_LATER = 1013;
const TOO_BIG = 1009;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Whether the gateway should hand this request to the bridge (before its own routes). */
export function isWebSocketUpgrade(req: Request, path: string): boolean {
  return path.startsWith("/ws-") && req.headers.get("upgrade")?.toLowerCase() === "websocket";
}

export class WebSocketBridge {
  readonly #sockets = new Set<WebSocket>();
  constructor(private readonly bus: PubsubBus, private readonly log: (line: string) => void) {}

  wants(req: Request, path: string): boolean {
    return isWebSocketUpgrade(req, path);
  }

  /** Answers an upgrade request for `path` on a host of `record`'s project. */
  handle(req: Request, record: DeploymentRecord, path: string, requestId: string): Response {
    const ref = this.#channelOf(record, path);
    if ("error" in ref) return requestFailed(ref.status, ref.error, requestId);
    if (!ref.binding.websocket) {
      return requestFailed(
        403,
        `channel ${ref.channel} of project ${record.project} has no WebSocket bridge: set bridges: {websocket: ` +
          `{enable: true}} in messaging/${ref.binding.name}.yaml`,
        requestId,
      );
    }
    if (req.method !== "GET") {
      return requestFailed(405, `a WebSocket upgrade must be a GET, not ${req.method}`, requestId);
    }
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(req, { idleTimeout: 60 });
    } catch (err) {
      return requestFailed(400, `bad WebSocket upgrade: ${(err as Error).message}`, requestId);
    }
    this.#serve(upgraded.socket, ref);
    return upgraded.response;
  }

  /** Closes every client (the node is stopping): the HTTP server's shutdown would otherwise wait for them. */
  close(): void {
    for (const s of this.#sockets) {
      try {
        s.close(1001, "node stopping");
      } catch { /* closed already */ }
    }
    this.#sockets.clear();
  }

  #serve(socket: WebSocket, ref: ChannelRef): void {
    socket.binaryType = "arraybuffer";
    this.#sockets.add(socket);
    const id = crypto.randomUUID();
    let leave: (() => void) | undefined;
    const drop = (code: number, reason: string) => {
      leave?.();
      leave = undefined;
      try {
        socket.close(code, reason);
      } catch { /* closed already */ }
    };
    const client = {
      id,
      deliver: (m: PubsubMessage) => {
        if (socket.readyState !== WebSocket.OPEN) return;
        if (socket.bufferedAmount + m.data.length > MAX_QUEUED_BYTES) {
          this.log(`pubsub: WebSocket client of ${ref.channel} dropped: over ${MAX_QUEUED_BYTES} bytes unsent`);
          return drop(TRY_AGAIN_LATER, "too slow: messages queued past the limit");
        }
        socket.send(textOr(m.data));
      },
    };
    socket.onopen = () => leave = this.bus.join(ref, client);
    socket.onmessage = (e: MessageEvent) => {
      const data = typeof e.data === "string"
        ? new TextEncoder().encode(e.data)
        : new Uint8Array(e.data as ArrayBuffer);
      if (data.length > MAX_MESSAGE_BYTES) return drop(TOO_BIG, `messages are at most ${MAX_MESSAGE_BYTES} bytes`);
      this.bus.publish(ref, data, id).catch((err) => {
        this.log(`pubsub: a WebSocket message on ${ref.channel} could not be published: ${err}`);
      });
    };
    const gone = () => {
      leave?.();
      leave = undefined;
      this.#sockets.delete(socket);
    };
    socket.onclose = gone;
    socket.onerror = gone;
  }

  /** The channel a path names for the project, or why not (404 for an unknown hash or channel). */
  #channelOf(record: DeploymentRecord, path: string): ChannelRef | { status: number; error: string } {
    const slash = path.indexOf("/", 1);
    const hash = path.slice(4, slash < 0 ? undefined : slash);
    let channel: string;
    try {
      channel = slash < 0 ? "" : decodeURIComponent(path.slice(slash + 1));
    } catch {
      return { status: 400, error: `bad request: ${path.slice(0, 80)} is not valid percent-encoding` };
    }
    if (!channel) return { status: 404, error: `no channel in ${path.slice(0, 80)}: open ws-<hash>/<channel>` };
    const scopes = new Set<string>([""]);
    for (const b of record.messaging ?? []) if (b.app) scopes.add(b.app);
    const scope = [...scopes].find((s) => scopeHash(record.project, s) === hash);
    if (scope === undefined) {
      return {
        status: 404,
        error: `ws-${hash.slice(0, 60)} is not a WebSocket path of project ${record.project}: use getWebSocketURL`,
      };
    }
    try {
      return resolveChannel(record, scope || undefined, channel);
    } catch (err) {
      return { status: 404, error: (err as Error).message };
    }
  }
}

function textOr(data: Uint8Array): string | Uint8Array {
  try {
    return utf8.decode(data);
  } catch {
    return data;
  }
}
