/**
 * `deno task bench pubsub`: pubsub messaging, with the chat project of tests/fixtures/pubsub_chat.ts.
 *   - publish -> WebSocket receive: an HTTP call to a function that publishes, until a WebSocket client of the
 *     channel has the message (one node; then across two, the call on node A and the client on node B). Baseline
 *     in the same run: the HTTP call's own round trip. Also a message one WebSocket client sends until another has
 *     it (no function on the path).
 *   - fan-out: one message to 1,000 WebSocket clients of one node, until the last of them has it.
 * Times are taken on one clock across processes (performance.timeOrigin + now()). The clients are Deno's own
 * WebSocket in a child process (tests/helpers/ws_clients.ts). Messages go one at a time; p50/p99 over N.
 */
import { join } from "node:path";
import { hostRequest, startCloud } from "../tests/helpers/cloud.ts";
import { eventually, startTestCloud } from "../tests/helpers/cluster.ts";
import { startWsClients, type WsClients } from "../tests/helpers/ws_clients.ts";
import { pushChat } from "../tests/fixtures/pubsub_chat.ts";

const N = Number(Deno.env.get("BENCH_MESSAGES") ?? 200);
const FAN_OUT = 1000;
const FAN_MESSAGES = Number(Deno.env.get("BENCH_FAN_MESSAGES") ?? 20);

/**
 * The channel measured: "receipts" has the WebSocket bridge and no subscribed function, so the figures are the bus's.
 * ("orders" runs onorder, whose database writes replicate to the other node and take both nodes' CPU: an earlier run
 * on it measured the function, p50 ~26 ms for the HTTP call alone across two nodes.)
 */
const CH = "receipts";

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}
const now = () => performance.timeOrigin + performance.now();
const line = (what: string, xs: number[]) =>
  console.log(`  ${what}: p50 ${pct(xs, 0.5).toFixed(2)} ms, p99 ${pct(xs, 0.99).toFixed(2)} ms (n=${xs.length})`);

/** Publishes through the function on `port`/`ip` and waits for client `id`; per message, [publish->receive, HTTP]. */
async function viaFunction(ws: WsClients, id: string, host: string, port: number, ip: string, n: number) {
  const latency: number[] = [];
  const http: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    const res = await hostRequest(port, host, `/send?ch=${CH}`, { method: "POST", body: `m${i}` }, ip);
    http.push(now() - t0);
    if (res.status !== 200) throw new Error(`publish failed: ${res.status} ${res.text}`);
    let m = await ws.next(id);
    while (m.data !== `m${i}`) m = await ws.next(id); // what a warm-up left behind
    latency.push(m.at - t0);
  }
  return { latency, http };
}

/** Client `from` (of `sender`) sends, client `to` (of `receiver`) receives: no function on the path. */
async function socketToSocket(
  sender: WsClients,
  from: string,
  receiver: WsClients,
  to: string,
  n: number,
  tag = "s",
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    sender.send(from, `${tag}${i}`);
    let m = await receiver.next(to);
    while (m.data !== `${tag}${i}`) m = await receiver.next(to); // what a warm-up left behind
    out.push(m.at - t0);
  }
  return out;
}

export async function runPubsubBench(): Promise<void> {
  console.log(`pubsub (${N} messages each, one at a time):`);
  const host = "chat.localtau";
  const work = await Deno.makeTempDir({ prefix: "tau-bench-pubsub-" });
  const cloud = await startCloud(join(work, "data"));
  const ws = await startWsClients({ [host]: "127.0.0.1" });
  try {
    await pushChat(work, cloud.url, host);
    const url = (await hostRequest(cloud.port, host, `/url?ch=${CH}`)).text;
    await ws.open("a", url);
    await ws.open("b", url);
    await viaFunction(ws, "a", host, cloud.port, "127.0.0.1", 20); // warm: modules compiled, executors up
    const one = await viaFunction(ws, "a", host, cloud.port, "127.0.0.1", N);
    console.log("one node (tau dev):");
    line("HTTP publish -> WebSocket receive", one.latency);
    line("  baseline, the HTTP call alone", one.http);
    ws.close("b");
    ws.close("a");
    await ws.open("c", url);
    await ws.open("d", url);
    line("WebSocket send -> other client receive", await socketToSocket(ws, "c", ws, "d", N));
    ws.close("c");
    ws.close("d");

    console.log(`fan-out: one message to ${FAN_OUT} WebSocket clients (${FAN_MESSAGES} messages):`);
    await ws.openMany("fan", url, FAN_OUT);
    const fan: number[] = [];
    for (let i = -2; i < FAN_MESSAGES; i++) { // two warm-up messages, not counted
      const t0 = now();
      const all = ws.nextAll("fan");
      const res = await hostRequest(cloud.port, host, `/send?ch=${CH}`, { method: "POST", body: `f${i}` });
      if (res.status !== 200) throw new Error(`publish failed: ${res.status}`);
      const got = await all;
      if (i >= 0) fan.push(got.last - t0);
    }
    line(`HTTP publish -> all ${FAN_OUT} received`, fan);
    ws.close("fan");
  } finally {
    await ws.stop();
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }

  const cluster = await startTestCloud([
    { shape: "all", ip: "127.0.0.103" },
    { shape: "all", ip: "127.0.0.104" },
  ]);
  const [a, b] = cluster.nodes;
  const multiHost = "chat.cloud.test";
  const work2 = await Deno.makeTempDir({ prefix: "tau-bench-pubsub-multi-" });
  const ws2 = await startWsClients({ [multiHost]: b.spec.ip });
  try {
    await cluster.waitMesh();
    await pushChat(work2, a.url, multiHost);
    const url = (await eventually(async () => {
      const r = await hostRequest(b.ports.http, multiHost, `/url?ch=${CH}`, {}, b.spec.ip);
      return r.status === 200 ? r : undefined;
    }, "node B serves the project")).text;
    await ws2.open("b", url);
    // Until A knows B's subscription (gossipsub); the messages this sends are skipped by viaFunction.
    let heard = false;
    const first = ws2.next("b").then(() => heard = true);
    for (let i = 0; i < 100 && !heard; i++) {
      await hostRequest(a.ports.http, multiHost, `/send?ch=${CH}`, { method: "POST", body: "ready" }, a.spec.ip);
      await Promise.race([first, new Promise((r) => setTimeout(r, 200))]);
    }
    if (!heard) throw new Error(`B's client never heard A\n${cluster.logs().slice(-2000)}`);
    await viaFunction(ws2, "b", multiHost, a.ports.http, a.spec.ip, 20);
    const cross = await viaFunction(ws2, "b", multiHost, a.ports.http, a.spec.ip, N);
    console.log("two nodes (function on A, WebSocket client on B, gossipsub between them):");
    line("HTTP publish on A -> WebSocket receive on B", cross.latency);
    line("  baseline, the HTTP call on A alone", cross.http);
    const wsA = await startWsClients({ [multiHost]: a.spec.ip });
    try {
      await wsA.open("a", (await hostRequest(a.ports.http, multiHost, `/url?ch=${CH}`, {}, a.spec.ip)).text);
      await socketToSocket(wsA, "a", ws2, "b", 20, "w");
      line("WebSocket send on A -> client receive on B", await socketToSocket(wsA, "a", ws2, "b", N, "x"));
    } finally {
      await wsA.stop();
    }
  } finally {
    await ws2.stop().catch(() => {});
    await cluster.stop();
    await Deno.remove(work2, { recursive: true }).catch(() => {});
  }
}
