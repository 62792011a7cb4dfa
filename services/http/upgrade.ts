/** A WebSocket handshake request (RFC 6455 section 4.1: a GET with `Upgrade: websocket`). */
export function isWebSocketUpgrade(req: Request): boolean {
  return req.method === "GET" && req.headers.get("upgrade")?.toLowerCase() === "websocket";
}
