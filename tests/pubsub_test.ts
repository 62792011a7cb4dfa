/**
 * Pubsub messaging and the WebSocket bridge, the way a user drives them: a project pushed with git whose HTTP
 * function publishes, whose pubsub function (trigger: pubsub) writes what it got to a database and answers on
 * another channel, and browsers (Deno's WebSocket, tests/helpers/ws_clients.ts) on the bridge. One node (`tau dev`)
 * and two nodes (gossipsub between them). Bad inputs: a channel no resource matches, a channel without the bridge,
 * an unknown path, a malformed frame on a raw socket: each refused clearly, and the node keeps serving.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./helpers/assert.ts";
import { hostRequest, startCloud } from "./helpers/cloud.ts";
import { pushChat } from "./fixtures/pubsub_chat.ts";
import { eventually, startTestCloud } from "./helpers/cluster.ts";
import { startWsClients } from "./helpers/ws_clients.ts";

const HOST = "chat.localtau";

/** A WebSocket upgrade request written by hand, for answers Deno's client does not show (status, body). */
function upgradeHeaders(): Record<string, string> {
  return {
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
  };
}

/** Opens a WebSocket over a raw TCP connection, then writes `frame` as is; resolves with what the node sent back. */
async function rawSocket(port: number, path: string, frame: Uint8Array): Promise<{ head: string; rest: Uint8Array }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${HOST}`];
  for (const [k, v] of Object.entries(upgradeHeaders())) lines.push(`${k}: ${v}`);
  await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
  const buf = new Uint8Array(65536);
  let got = new Uint8Array(0);
  let headEnd = -1;
  while (headEnd < 0) {
    const n = await conn.read(buf);
    if (n === null) break;
    got = new Uint8Array([...got, ...buf.subarray(0, n)]);
    headEnd = new TextDecoder().decode(got).indexOf("\r\n\r\n");
  }
  const head = new TextDecoder().decode(got.subarray(0, headEnd));
  await conn.write(frame);
  // Read until the node closes the connection (it must: the frame is not valid WebSocket).
  const rest: number[] = [];
  while (true) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    rest.push(...buf.subarray(0, n));
  }
  conn.close();
  return { head, rest: new Uint8Array(rest) };
}

Deno.test({
  name: "pubsub on one node: HTTP publish runs the pubsub function; WebSocket clients receive and publish; bad inputs",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const work = await Deno.makeTempDir({ prefix: "tau-pubsub-" });
    const cloud = await startCloud(join(work, "data"));
    const ws = await startWsClients({ [HOST]: "127.0.0.1" });
    const call = (path: string, body?: string) =>
      hostRequest(cloud.port, HOST, path, body === undefined ? {} : { method: "POST", body });
    try {
      await pushChat(work, cloud.url, HOST);

      await t.step("an HTTP function publishes; the pubsub function's write is read by another function", async () => {
        const sent = await call("/send?ch=orders", "o1");
        assertEquals([sent.status, sent.text], [200, "sent"]);
        const read = await eventually(async () => {
          const r = await call("/read");
          return r.text === "o1|1" ? r : undefined;
        }, "the pubsub function stored o1");
        assertEquals(read.status, 200);
      });

      let ordersUrl = "";
      let ordersPath = "";
      let wsPort = 0;
      await t.step(
        "getWebSocketURL: the project's domain, the node's WebSocket port, Taubyte's ws-<hash>/<channel>",
        async () => {
          const url = await call("/url?ch=orders");
          assertEquals(url.status, 200, url.text);
          const m = url.text.match(/^ws:\/\/chat\.localtau:(\d+)(\/ws-Qm[1-9A-HJ-NP-Za-km-z]{44}\/orders)$/);
          assert(m, url.text);
          [ordersUrl, wsPort, ordersPath] = [url.text, Number(m[1]), m[2]];
        },
      );

      await t.step(
        "WebSocket clients receive what a function published; what one sends runs the function",
        async () => {
          const receipts = (await call("/url?ch=receipts")).text;
          await ws.open("a", ordersUrl);
          await ws.open("b", ordersUrl);
          await ws.open("r", receipts);
          assertEquals((await call("/send?ch=orders", "o2")).status, 200);
          assertEquals(await ws.next("a").then((m) => [m.data, m.binary]), ["o2", false], "text frame for UTF-8");
          assertEquals((await ws.next("b")).data, "o2");
          assertEquals((await ws.next("r")).data, "got o2 on orders", "the pubsub function ran and published");
          ws.send("a", "from-ws");
          assertEquals((await ws.next("b")).data, "from-ws", "another client of the channel gets it");
          assertEquals((await ws.next("r")).data, "got from-ws on orders", "and it ran the subscribed function");
          await eventually(async () => (await call("/read")).text === "from-ws|3", "the function stored from-ws");
        },
      );

      await t.step("a channel no resource matches: the call gets an errno and the log names the channel", async () => {
        const r = await call("/send?ch=nowhere", "x");
        assertEquals([r.status, r.text], [421, "errno 21"], "publishFailed (21)");
        assertMatch(
          cloud.output(),
          /stderr: host: no messaging resource of project chat matches channel nowhere: add messaging\/<name>\.yaml with match: nowhere/,
        );
        assertEquals((await call("/read")).text, "from-ws|3", "nothing ran");
      });

      await t.step("WebSockets refused before the upgrade: no bridge, unknown channel, unknown path", async () => {
        const hash = ordersPath.slice(1, ordersPath.indexOf("/", 1));
        const quiet = await hostRequest(wsPort, HOST, `/${hash}/quiet`, { headers: upgradeHeaders() });
        assertEquals(quiet.status, 403, quiet.text);
        assertStringIncludes(quiet.text, "channel quiet of project chat has no WebSocket bridge");
        assertStringIncludes(quiet.text, "bridges: {websocket: {enable: true}} in messaging/quiet.yaml");
        const unknown = await hostRequest(wsPort, HOST, `/${hash}/nowhere`, { headers: upgradeHeaders() });
        assertEquals(unknown.status, 404, unknown.text);
        assertStringIncludes(unknown.text, "matches channel nowhere");
        const badHash = await hostRequest(wsPort, HOST, "/ws-QmNope/orders", { headers: upgradeHeaders() });
        assertEquals(badHash.status, 404, badHash.text);
        assertStringIncludes(badHash.text, "is not a WebSocket path of project chat");
        const onHttpPort = await hostRequest(cloud.port, HOST, ordersPath, { headers: upgradeHeaders() });
        assertEquals(onHttpPort.status, 400, onHttpPort.text);
        assertStringIncludes(onHttpPort.text, `WebSockets are served on port ${wsPort} of this node`);
        const plain = await hostRequest(wsPort, HOST, "/send");
        assertEquals(plain.status, 400, "the WebSocket port is no second way into the gateway");
        const url = await call("/url?ch=quiet");
        assertEquals(url.status, 500, "getWebSocketURL of a channel without the bridge traps in the SDK");
        assertMatch(cloud.output(), /host: channel quiet has no WebSocket bridge/);
        // Deno's client sees the refusal as a failed open.
        let refused = "";
        await ws.open("q", `ws://${HOST}:${wsPort}/${hash}/quiet`).catch((err) => refused = String(err));
        assertStringIncludes(refused, "WebSocket q");
      });

      await t.step("a malformed frame closes that socket only: the node and the other clients go on", async () => {
        // FIN + reserved opcode 0x3, unmasked (a client frame must be masked): invalid twice over.
        const { head } = await rawSocket(wsPort, ordersPath, new Uint8Array([0x83, 0x02, 0x68, 0x69]));
        assertStringIncludes(head, "HTTP/1.1 101");
        assertEquals((await call("/send?ch=orders", "o3")).status, 200);
        assertEquals((await ws.next("a")).data, "o3");
        assertEquals((await ws.next("b")).data, "o3");
        await eventually(async () => (await call("/read")).text === "o3|4", "the node still runs functions");
      });
    } finally {
      await ws.stop();
      await cloud.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "pubsub on two nodes (and a gateway-only third): a WebSocket client on node B receives what a function on node A published; each message runs once",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const host = "chat.cloud.test";
    const cluster = await startTestCloud([
      { shape: "all", ip: "127.0.0.101" },
      { shape: "all", ip: "127.0.0.102" },
    ]);
    const [a, b] = cluster.nodes;
    const work = await Deno.makeTempDir({ prefix: "tau-pubsub-multi-" });
    const ws = await startWsClients({ [host]: b.spec.ip });
    const on = (node: typeof a, path: string, body?: string) =>
      hostRequest(node.ports.http, host, path, body === undefined ? {} : { method: "POST", body }, node.spec.ip);
    try {
      await cluster.waitMesh();
      await pushChat(work, a.url, host);
      const path = (await eventually(async () => {
        const r = await on(b, "/url?ch=orders");
        return r.status === 200 ? r : undefined;
      }, "node B serves the project")).text;
      await ws.open("b", path);
      // Every run of the pubsub function says so on "receipts": a client there counts the runs of each message.
      await ws.open("r", (await on(b, "/url?ch=receipts")).text);
      // Node A learns of B's subscriptions over gossipsub shortly after B subscribes: publish until B's client hears.
      let received = "";
      const listening = ws.next("b").then((m) => received = m.data);
      for (let i = 0; i < 100 && !received; i++) {
        assertEquals((await on(a, "/send?ch=orders", `hello-${i}`)).status, 200);
        await Promise.race([listening, new Promise((r) => setTimeout(r, 200))]);
      }
      assertMatch(received, /^hello-\d+$/, cluster.logs());
      const receipts = new Map<string, number>();
      const until = async (text: string) => {
        while (!receipts.has(text)) {
          const m = await ws.next("r");
          receipts.set(m.data, (receipts.get(m.data) ?? 0) + 1);
        }
      };
      // Once in the cloud: a message published on A ran the (non-local) function once, though B runs it too.
      assertEquals((await on(a, "/send?ch=orders", "m1")).status, 200);
      // And a message a browser on B sends runs it once as well (on B, which runs substrate).
      await until("got m1 on orders");
      ws.send("b", "from-b");
      await until("got from-b on orders");
      assertEquals((await on(a, "/send?ch=orders", "m2")).status, 200);
      await until("got m2 on orders");
      for (const text of ["got m1 on orders", "got from-b on orders"]) assertEquals(receipts.get(text), 1, text);

      // A gateway-only node runs no functions: it serves the bridge itself, and hands its clients' messages to one
      // substrate node, where they run once.
      const c = await cluster.add({ shape: "edge", ip: "127.0.0.105", services: "gateway" });
      await cluster.waitMesh();
      const wsC = await startWsClients({ [host]: c.spec.ip });
      try {
        // Its WebSocket port is its HTTP port + 1 (ws_listener.ts); the path is the same on every node.
        const cUrl = path.replace(/:\d+\//, `:${c.ports.http + 1}/`);
        await eventually(async () => {
          const r = await hostRequest(c.ports.http, host, "/read", {}, c.spec.ip);
          return r.status === 200;
        }, "node C serves the project");
        await wsC.open("c", cUrl);
        let heard = "";
        const hearing = wsC.next("c").then((m) => heard = m.data);
        for (let i = 0; i < 100 && !heard; i++) {
          assertEquals((await on(a, "/send?ch=orders", `to-c-${i}`)).status, 200);
          await Promise.race([hearing, new Promise((r) => setTimeout(r, 200))]);
        }
        assertMatch(heard, /^to-c-\d+$/, cluster.logs());
        wsC.send("c", "from-c");
        await until("got from-c on orders");
        assertEquals((await on(a, "/send?ch=orders", "m3")).status, 200);
        await until("got m3 on orders");
        assertEquals(receipts.get("got from-c on orders"), 1);
      } finally {
        await wsC.stop();
      }
      assert([...receipts.values()].every((n) => n === 1), JSON.stringify([...receipts]));
    } finally {
      await ws.stop();
      await cluster.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
