/**
 * The libp2p node every `tau serve` runs: TCP, noise, yamux, identify, ping, gossipsub, and a private network
 * (@libp2p/pnet) when the cloud has a swarm key, so a node without the key cannot connect or learn anything.
 *
 * Discovery is deliberately small: the bootstrap list is dialled again until connected (libp2p's bootstrap module
 * dials once and never retries), and peers announced in the service directory are dialled too (peers listed only at
 * one bootstrap node do not find each other otherwise). Clouds are tens of nodes, so a full mesh is fine.
 */
import "./shims.ts";
import { createLibp2p, type Libp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@libp2p/noise";
import { yamux } from "@libp2p/yamux";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { type GossipSub, gossipsub } from "@libp2p/gossipsub";
import { preSharedKey } from "@libp2p/pnet";
import { multiaddr } from "@multiformats/multiaddr";
import { peerIdFromString } from "@libp2p/peer-id";
import type { NodeIdentity } from "./keys.ts";

export interface P2pOptions {
  identity: NodeIdentity;
  /** Multiaddrs to listen on, e.g. /ip4/127.0.0.11/tcp/4242. */
  listen: string[];
  /** What other nodes should dial (defaults to the bound listen addresses). */
  announce?: string[];
  /** Full multiaddrs (/ip4/.../tcp/.../p2p/<id>) dialled until connected. */
  bootstrap: string[];
  /** Dial from this address (the node's IP): peers see it, and firewall rules between nodes can name it. */
  localAddress?: string;
  /** The swarm key file's bytes: with it the node only talks to nodes holding the same key. */
  swarmKey?: Uint8Array;
  log?: (line: string) => void;
}

export type Libp2pNode = Libp2p<{ pubsub: GossipSub; identify: unknown; ping: unknown }>;

export interface P2pNode {
  libp2p: Libp2pNode;
  peerId: string;
  /** Full multiaddrs of this node, /p2p/<id> included. */
  addresses(): string[];
  /** Dial a peer at these multiaddrs unless already connected (bounded by a timeout; errors are logged only). */
  connect(addrs: string[]): Promise<boolean>;
  stop(): Promise<void>;
}

/** Redial back-off for the bootstrap list: 0.5 s doubling to 30 s, per address. */
const REDIAL_MIN_MS = 500;
const REDIAL_MAX_MS = 30_000;
const DIAL_TIMEOUT_MS = 5_000;

export async function startP2p(opts: P2pOptions): Promise<P2pNode> {
  const log = opts.log ?? (() => {});
  const libp2p = await createLibp2p({
    privateKey: opts.identity.privateKey,
    addresses: { listen: opts.listen, announce: opts.announce ?? [] },
    // dialOpts reach node:net's connect, which takes localAddress; @libp2p/tcp's type does not list it.
    transports: [
      tcp((opts.localAddress ? { dialOpts: { localAddress: opts.localAddress } } : {}) as Parameters<typeof tcp>[0]),
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: opts.swarmKey ? preSharedKey({ psk: opts.swarmKey }) : undefined,
    connectionManager: {
      // A cloud's nodes dial each other from one address each; libp2p's default (5 inbound connections per second
      // per remote address) resets reconnects after a restart. Loopback clouds share 127.0.0.1 as the source.
      inboundConnectionThreshold: 100,
      allow: ["/ip4/127.0.0.0/ipcidr/8"],
      maxConnections: 300,
    },
    peerDiscovery: [],
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        // Signed by the sender's key: a directory entry or a TNS head names its author, and cannot be forged by
        // another member of the swarm.
        globalSignaturePolicy: "StrictSign",
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        // Small clouds: send to every subscriber at once rather than waiting for the mesh to form.
        floodPublish: true,
        doPX: false,
      }),
    },
  }) as unknown as Libp2pNode;
  await libp2p.start();

  const backoff = new Map<string, { next: number; delay: number }>();
  let stopped = false;
  // Aborts the dials in flight when the node stops: a dial to a peer that never answers (another swarm key, a paused
  // node) would otherwise hold the shutdown for its whole timeout.
  const stopping = new AbortController();
  const connect = async (addrs: string[]): Promise<boolean> => {
    for (const a of addrs) {
      const ma = multiaddr(a);
      const id = ma.getComponents().find((c) => c.name === "p2p")?.value;
      if (id === opts.identity.peerId) return true;
      if (id && libp2p.getConnections(peerIdFromString(id)).length > 0) return true;
      try {
        await libp2p.dial(ma, { signal: AbortSignal.any([AbortSignal.timeout(DIAL_TIMEOUT_MS), stopping.signal]) });
        return true;
      } catch (err) {
        log(`p2p: cannot dial ${a}: ${(err as Error).message}`);
      }
    }
    return false;
  };
  const redial = async () => {
    const now = Date.now();
    await Promise.all(opts.bootstrap.map(async (addr) => {
      const b = backoff.get(addr) ?? { next: 0, delay: REDIAL_MIN_MS };
      if (now < b.next) return;
      const ok = await connect([addr]);
      b.delay = ok ? REDIAL_MIN_MS : Math.min(REDIAL_MAX_MS, b.delay * 2);
      b.next = Date.now() + (ok ? REDIAL_MAX_MS / 10 : b.delay);
      backoff.set(addr, b);
    }));
  };
  let redialing: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (stopped || redialing) return;
    redialing = redial().finally(() => (redialing = undefined));
  }, REDIAL_MIN_MS);
  Deno.unrefTimer(timer);
  redialing = redial().finally(() => (redialing = undefined));

  return {
    libp2p,
    peerId: opts.identity.peerId,
    addresses: () => libp2p.getMultiaddrs().map((m) => m.toString()),
    connect,
    async stop() {
      stopped = true;
      clearInterval(timer);
      stopping.abort();
      await redialing?.catch(() => {});
      await libp2p.stop();
    },
  };
}
