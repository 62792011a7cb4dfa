// The container WebSocket relay with real sockets: a WebSocket server on a Unix socket stands where a container's
// published port is, and a client connects through a loopback HTTP server that relays as the gateway does. Text and
// binary messages keep their kind both ways, close codes pass through, a container that refuses the upgrade is an
// HTTP error for the client, and the request's path and headers reach the container.
import { assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { isWebSocketUpgrade } from "../http/upgrade.ts";
import { relayWebSocket } from "./websocket.ts";

async function withRelay(
  container: (req: Request) => Response,
  test: (url: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tau-ws-" });
  const path = `${dir}/port.sock`;
  const upstream = Deno.serve({ path, onListen() {} }, container);
  const front = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      isWebSocketUpgrade(req)
        ? relayWebSocket(req, path, { host: "app.localtau", requestId: "r1", clientIp: "127.0.0.1", name: "app" })
        : new Response("not a websocket", { status: 400 }),
  );
  try {
    await test(`ws://127.0.0.1:${front.addr.port}`);
  } finally {
    await front.shutdown();
    await upstream.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

function next(ws: WebSocket): Promise<MessageEvent> {
  return new Promise((resolve, reject) => {
    ws.addEventListener("message", resolve, { once: true });
    ws.addEventListener("close", () => reject(new Error("closed")), { once: true });
  });
}

Deno.test("container websocket relay: messages both ways, kinds kept, path and headers passed, closes passed", async () => {
  let seen = "";
  const closed = Promise.withResolvers<number>();
  await withRelay((req) => {
    seen = `${new URL(req.url).pathname}${new URL(req.url).search} host=${req.headers.get("host")} ` +
      `id=${req.headers.get("x-request-id")} app=${req.headers.get("x-app")}`;
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      if (typeof e.data === "string") socket.send(`echo ${e.data}`);
      else socket.send(new Uint8Array([...new Uint8Array(e.data), 255]));
      if (e.data === "bye") socket.close(4001, "done here");
    };
    socket.onclose = (e) => closed.resolve(e.code);
    return response;
  }, async (url) => {
    const ws = new WebSocket(`${url}/chat?room=1`);
    ws.binaryType = "arraybuffer";
    await new Promise((r) => ws.onopen = r);
    ws.send("hi");
    assertEquals((await next(ws)).data, "echo hi");
    ws.send(new Uint8Array([1, 2, 3]));
    assertEquals([...new Uint8Array((await next(ws)).data as ArrayBuffer)], [1, 2, 3, 255]);
    const gone = new Promise<CloseEvent>((r) => ws.onclose = r);
    ws.send("bye");
    const e = await gone;
    assertEquals([e.code, e.reason], [4001, "done here"]);
    assertEquals(await closed.promise, 4001);
  });
  assertEquals(seen, "/chat?room=1 host=app.localtau id=r1 app=null");
});

Deno.test("container websocket relay: a container that refuses the upgrade is an HTTP error for the client", async () => {
  await withRelay(() => new Response("no sockets here", { status: 404 }), async (url) => {
    const res = await fetch(url.replace("ws:", "http:") + "/x", {
      headers: {
        upgrade: "websocket",
        connection: "upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    assertEquals(res.status, 502);
    assertStringIncludes(await res.text(), "container app refused the WebSocket upgrade (it answered 404)");
  });
});
