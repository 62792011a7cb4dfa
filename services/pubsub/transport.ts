/**
 * Pubsub across the nodes of a cloud: gossipsub inside the private swarm, one topic per project and channel
 * (`/tau/<cloud>/pubsub/<project>[:<app>]/<channel>`), and one RPC (`/tau/pubsub/1.0.0` "run") that hands a message
 * to a substrate node to run its non-local functions (bus.ts says why that runs them once). A node subscribes to a
 * topic only while it has a WebSocket client or a `local: true` function for it, so a message reaches only the
 * nodes that do something with it. Messages are CBOR, signed by the sending node (StrictSign, p2p/node.ts).
 */
import { decode, encode } from "cborg";
import type { Cluster } from "../cluster/cluster.ts";
import { protocolOf, serveRpc } from "../p2p/rpc.ts";
import { channelKey } from "./channels.ts";
import { MAX_MESSAGE_BYTES, type PubsubBus, type PubsubMessage, type PubsubTransport } from "./bus.ts";

const SERVICE = "pubsub";
const HAND_OFF_TIMEOUT_MS = 5_000;

type GossipEvent = CustomEvent<{ topic: string; data: Uint8Array; type: string; from?: { toString(): string } }>;

export async function startTransport(
  cluster: Cluster,
  bus: PubsubBus,
  opts: { runsFunctions: boolean; log: (line: string) => void },
): Promise<PubsubTransport> {
  const pubsub = cluster.p2p.libp2p.services.pubsub;
  const prefix = `/tau/${cluster.config.cloud}/pubsub/`;
  const self = cluster.p2p.peerId;
  const subscribed = new Set<string>();

  const onMessage = (evt: GossipEvent) => {
    const msg = evt.detail;
    if (!msg.topic.startsWith(prefix) || !subscribed.has(msg.topic)) return;
    const m = parse(decodeSafe(msg.data));
    // The topic names the channel: a message claiming another one is not delivered.
    if (!m || prefix + channelKey(m.project, m.scope, m.channel) !== msg.topic) return;
    bus.receive(m);
  };
  pubsub.addEventListener("message", onMessage as EventListener);

  if (opts.runsFunctions) {
    await serveRpc(cluster.p2p.libp2p, SERVICE, (req) => {
      const m = req.method === "run" ? parse(req.params) : undefined;
      if (!m) return Promise.reject(new Error(`pubsub: bad ${req.method} call from ${req.peer}`));
      bus.runHandedOff(m); // answered at once: the functions run after, their failures are logged here
      return Promise.resolve({ result: true });
    });
  }

  return {
    async publish(key, m) {
      await pubsub.publish(prefix + key, encode(wire(m)));
    },
    want(keys) {
      const topics = new Set([...keys].map((k) => prefix + k));
      for (const t of subscribed) {
        if (topics.has(t)) continue;
        subscribed.delete(t);
        try {
          pubsub.unsubscribe(t);
        } catch { /* stopping */ }
      }
      for (const t of topics) {
        if (subscribed.has(t)) continue;
        subscribed.add(t);
        pubsub.subscribe(t);
      }
    },
    async handOff(m) {
      // Least loaded first (directory.ts); only one is asked: asking a second after a lost answer could run twice.
      const target = cluster.directory.peersFor("substrate").find((e) => e.peer !== self);
      if (!target) return false;
      await cluster.rpc.call(target.peer, SERVICE, "run", wire(m), { timeoutMs: HAND_OFF_TIMEOUT_MS });
      return true;
    },
    async close() {
      pubsub.removeEventListener("message", onMessage as EventListener);
      for (const t of subscribed) {
        try {
          pubsub.unsubscribe(t);
        } catch { /* stopping */ }
      }
      subscribed.clear();
      if (opts.runsFunctions) await cluster.p2p.libp2p.unhandle(protocolOf(SERVICE)).catch(() => {});
    },
  };
}

/** On the wire: short keys, the data as bytes (CBOR carries them without base64). */
function wire(m: PubsubMessage) {
  return { i: m.id, p: m.project, s: m.scope, c: m.channel, d: m.data, ...(m.from ? { f: m.from } : {}) };
}

function decodeSafe(data: Uint8Array): unknown {
  try {
    return decode(data);
  } catch {
    return undefined;
  }
}

/** A message from another node, checked field by field (a member of the swarm may still send nonsense). */
function parse(v: unknown): PubsubMessage | undefined {
  if (!v || typeof v !== "object") return undefined;
  const o = v as Record<string, unknown>;
  const text = (x: unknown) => typeof x === "string" && x.length > 0 && x.length <= 1024;
  if (!text(o.i) || !text(o.p) || typeof o.s !== "string" || !text(o.c) || !(o.d instanceof Uint8Array)) {
    return undefined;
  }
  if (o.d.length > MAX_MESSAGE_BYTES || (o.f !== undefined && typeof o.f !== "string")) return undefined;
  return {
    id: o.i as string,
    project: o.p as string,
    scope: o.s,
    channel: o.c as string,
    data: o.d,
    ...(o.f ? { from: o.f as string } : {}),
  };
}
