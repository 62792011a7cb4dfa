/**
 * The service directory: every node announces its shape, services, addresses and health on one gossipsub topic
 * every HEARTBEAT_MS; every node keeps what it heard (in memory, and in Deno KV so that a restart starts from the last
 * known cloud instead of an empty one). A node unheard for DEAD_AFTER_MS is dead: it leaves answers (DNS, service
 * picks) within that bound plus one gossip hop. Messages are signed by the sender (gossipsub StrictSign) and an
 * announcement must come from the peer it describes, so no member can speak for another.
 */
import { decode, encode } from "cborg";
import type { Libp2pNode } from "./node.ts";

import type { ServiceName } from "../config/services.ts";

export const HEARTBEAT_MS = 2_000;
/** Three missed heartbeats. */
export const DEAD_AFTER_MS = 6_000;

export interface NodeAnnouncement {
  peer: string;
  cloud: string;
  shape: string;
  services: ServiceName[];
  /** libp2p multiaddrs, /p2p/<id> included. */
  addrs: string[];
  /** The node's HTTP listener (gateway, API, git), e.g. http://127.0.0.11:80. */
  http: string;
  /** host:port of its DNS listener when it runs seer. */
  dns?: string;
  /** IP the node was configured with (what DNS answers for a gateway). */
  ip: string;
  /** 1-minute load average divided by cores. */
  load: number;
  freeDiskBytes: number;
  rssBytes: number;
  startedAt: number;
  /** Keys of the deployed containers running on the node (gateways forward a container's requests to one of them). */
  containers?: string[];
  /** When this announcement was made (sender's clock, ms). */
  at: number;
}

export interface DirectoryEntry extends NodeAnnouncement {
  /** When we last heard from it (our clock, ms). */
  seen: number;
  alive: boolean;
}

export interface DirectoryOptions {
  libp2p: Libp2pNode;
  kv: Deno.Kv;
  cloud: string;
  /** This node's own announcement, fresh each heartbeat (health figures change). */
  self: () => Promise<Omit<NodeAnnouncement, "at">>;
  /** Dial a newly heard peer (peer exchange: bootstrap lists need not be complete). */
  connect?: (addrs: string[]) => Promise<boolean>;
  log?: (line: string) => void;
}

const KV_PREFIX = ["p2p", "peer"];

export class Directory {
  readonly #opts: DirectoryOptions;
  readonly #topic: string;
  readonly #entries = new Map<string, DirectoryEntry>();
  readonly #listeners = new Set<(e: DirectoryEntry) => void>();
  /** When each peer's entry was last written to KV. */
  readonly #persisted = new Map<string, number>();
  #timer?: ReturnType<typeof setInterval>;
  #selfPeer: string;

  constructor(opts: DirectoryOptions) {
    this.#opts = opts;
    this.#topic = `/tau/${opts.cloud}/directory/1`;
    this.#selfPeer = opts.libp2p.peerId.toString();
  }

  async start(): Promise<void> {
    // The last known cloud, marked with its old `seen`: it is dead until heard again, but its addresses can be dialled.
    for await (const e of this.#opts.kv.list<DirectoryEntry>({ prefix: KV_PREFIX })) {
      if (e.value.peer !== this.#selfPeer) this.#entries.set(e.value.peer, { ...e.value, alive: false });
    }
    const pubsub = this.#opts.libp2p.services.pubsub;
    pubsub.subscribe(this.#topic);
    pubsub.addEventListener("message", this.#onMessage);
    await this.#beat();
    const timer = setInterval(() => this.#beat().catch((err) => this.#opts.log?.(`directory: ${err}`)), HEARTBEAT_MS);
    Deno.unrefTimer(timer);
    this.#timer = timer;
    // Dial what the last run knew: a restarted node finds the cloud even when its bootstrap peer is the one down.
    for (const e of this.#entries.values()) this.#opts.connect?.(e.addrs).catch(() => {});
  }

  stop(): void {
    clearInterval(this.#timer);
    const pubsub = this.#opts.libp2p.services.pubsub;
    pubsub.removeEventListener("message", this.#onMessage);
    try {
      pubsub.unsubscribe(this.#topic);
    } catch { /* stopping */ }
  }

  /** Every node known, this one included, with liveness as of now. */
  list(): DirectoryEntry[] {
    const now = Date.now();
    return [...this.#entries.values()].map((e) => ({
      ...e,
      alive: e.peer === this.#selfPeer || now - e.seen <= DEAD_AFTER_MS,
    })).sort((a, b) => a.peer.localeCompare(b.peer));
  }

  /** Live nodes running `service`, least loaded first (this node first on a tie: no hop is cheaper). */
  peersFor(service: ServiceName): DirectoryEntry[] {
    return this.#leastLoadedFirst((e) => e.services.includes(service));
  }

  /** Live nodes running the deployed container `key`, least loaded first (this node first on a tie). */
  peersRunning(key: string): DirectoryEntry[] {
    return this.#leastLoadedFirst((e) => e.containers?.includes(key) ?? false);
  }

  #leastLoadedFirst(wanted: (e: DirectoryEntry) => boolean): DirectoryEntry[] {
    return this.list().filter((e) => e.alive && wanted(e)).sort((a, b) =>
      (a.peer === this.#selfPeer ? -1 : 0) - (b.peer === this.#selfPeer ? -1 : 0) || a.load - b.load ||
      a.peer.localeCompare(b.peer)
    );
  }

  /** Announce now rather than at the next beat: what the node runs changed, and others should know at once. */
  announceNow(): void {
    if (this.#timer === undefined) return; // not started
    this.#beat().catch((err) => this.#opts.log?.(`directory: ${err}`));
  }

  get(peer: string): DirectoryEntry | undefined {
    return this.list().find((e) => e.peer === peer);
  }

  /** Called for every announcement heard (including this node's own). */
  onChange(listener: (e: DirectoryEntry) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async #beat(): Promise<void> {
    const announcement: NodeAnnouncement = { ...(await this.#opts.self()), at: Date.now() };
    this.#record(announcement);
    await this.#opts.libp2p.services.pubsub.publish(this.#topic, encode(announcement)).catch(() => {});
  }

  #onMessage = (evt: CustomEvent<{ topic: string; data: Uint8Array; type: string; from?: { toString(): string } }>) => {
    const msg = evt.detail;
    if (msg.topic !== this.#topic || msg.type !== "signed" || !msg.from) return;
    let a: NodeAnnouncement;
    try {
      a = decode(msg.data) as NodeAnnouncement;
    } catch {
      return;
    }
    // Signed by its sender: it may only describe itself, and only for this cloud.
    if (a.peer !== msg.from.toString() || a.cloud !== this.#opts.cloud) return;
    const known = this.#entries.get(a.peer);
    if (known && known.at > a.at) return; // an older announcement arriving late
    if (!known || !known.alive) this.#opts.connect?.(a.addrs).catch(() => {});
    this.#record(a);
  };

  #record(a: NodeAnnouncement): void {
    const entry: DirectoryEntry = { ...a, seen: Date.now(), alive: true };
    const previous = this.#entries.get(a.peer);
    this.#entries.set(a.peer, entry);
    // KV is a cache for restarts: write when something other than the health figures changed, or every 10th beat.
    if (
      !previous || !previous.alive || previous.addrs.join() !== a.addrs.join() ||
      previous.services.join() !== a.services.join() || previous.containers?.join() !== a.containers?.join() ||
      entry.seen - (this.#persisted.get(a.peer) ?? 0) > 10 * HEARTBEAT_MS
    ) {
      this.#persisted.set(a.peer, entry.seen);
      this.#opts.kv.set([...KV_PREFIX, a.peer], entry).catch(() => {});
    }
    for (const l of this.#listeners) {
      try {
        l(entry);
      } catch { /* a listener's failure is its own */ }
    }
  }
}
