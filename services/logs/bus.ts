/**
 * Function logs as a stream: every node's function output (the guest's log and stderr lines, traps) and one
 * request line per function call, for whoever follows a project (`tau logs --follow <project>`, the console).
 * Nothing is kept: a line that nobody follows is dropped where it is made, and the request line of a call is only
 * made while someone follows its project (one Set lookup per call otherwise).
 *
 * On a cloud, a node with a follower of project P subscribes to the gossipsub topic `/tau/<cloud>/logs/<P>`; every
 * node that sees a subscriber to that topic (its own or a peer's) publishes P's lines there, batched every
 * BATCH_MS, so a follower on any node sees the lines of every node. The topic is inside the private swarm, and
 * messages are signed by their node (gossipsub StrictSign), so the `node` of a line cannot be forged.
 */
import { decode, encode } from "cborg";
import type { Libp2pNode } from "../p2p/node.ts";

export interface LogLine {
  /** The node that ran the call (its IP and shape on a cloud, "local" under `tau dev`). */
  node: string;
  project: string;
  /** The function ("app/name" for an application's). */
  fn: string;
  requestId: string;
  /** request: one line per call (method, path, status, duration); the others are what the guest wrote. */
  stream: "request" | "stderr" | "log" | "trap";
  text: string;
  /** ms since the epoch, the node's clock. */
  at: number;
}

export type Follower = (line: LogLine) => void;

const BATCH_MS = 50;
/** At most this many lines per gossip message (and per batch): a guest that logs in a loop is cut, and says so. */
const BATCH_LINES = 500;
/** Longest text of one line sent to followers. */
const MAX_TEXT = 4096;

export class LogBus {
  readonly #followers = new Map<string, Set<Follower>>();
  /** Projects some peer follows (it subscribed to the project's topic). */
  readonly #remote = new Map<string, Set<string>>();
  readonly #pending = new Map<string, LogLine[]>();
  readonly #dropped = new Map<string, number>();
  #timer?: ReturnType<typeof setTimeout>;
  #p2p?: { libp2p: Libp2pNode; cloud: string; onMessage: (e: Event) => void; onSubs: (e: Event) => void };

  constructor(readonly node: string) {}

  /** Whether any follower, here or on another node, wants `project`'s lines. */
  watched(project: string): boolean {
    return this.#followers.has(project) || this.#remote.has(project);
  }

  /** A line made on this node. */
  emit(line: Omit<LogLine, "node" | "at">): void {
    if (!this.watched(line.project)) return;
    const full: LogLine = {
      ...line,
      text: line.text.length > MAX_TEXT ? `${line.text.slice(0, MAX_TEXT)}...` : line.text,
      node: this.node,
      at: Date.now(),
    };
    this.#deliver(full);
    if (this.#p2p && this.#remote.has(line.project)) this.#queue(full);
  }

  /** Calls `follower` with `project`'s lines (of `fn` only, when given) until the returned function is called. */
  follow(project: string, fn: string | undefined, follower: Follower): () => void {
    const wrapped: Follower = fn ? (l) => l.fn === fn && follower(l) : follower;
    let set = this.#followers.get(project);
    if (!set) {
      this.#followers.set(project, set = new Set());
      this.#p2p?.libp2p.services.pubsub.subscribe(this.#topic(project));
    }
    set.add(wrapped);
    return () => {
      set.delete(wrapped);
      if (set.size === 0 && this.#followers.get(project) === set) {
        this.#followers.delete(project);
        try {
          this.#p2p?.libp2p.services.pubsub.unsubscribe(this.#topic(project));
        } catch { /* stopping */ }
      }
    };
  }

  /** On a cloud: lines cross nodes over gossipsub. */
  attach(libp2p: Libp2pNode, cloud: string): void {
    const prefix = `/tau/${cloud}/logs/`;
    const pubsub = libp2p.services.pubsub;
    const onMessage = (e: Event) => {
      const msg = (e as CustomEvent<{ topic: string; data: Uint8Array }>).detail;
      if (!msg.topic.startsWith(prefix)) return;
      const project = msg.topic.slice(prefix.length);
      try {
        for (const line of decode(msg.data) as LogLine[]) if (line.project === project) this.#deliver(line);
      } catch { /* not ours to fix: a malformed batch is dropped */ }
    };
    const onSubs = () => this.#refreshRemote();
    pubsub.addEventListener("message", onMessage);
    pubsub.addEventListener("subscription-change", onSubs);
    this.#p2p = { libp2p, cloud, onMessage, onSubs };
    // A peer that goes away unsubscribes without a message: re-read the subscriber lists now and then.
    const refresh = setInterval(() => this.#refreshRemote(), 5_000);
    Deno.unrefTimer(refresh);
    this.#stopRefresh = () => clearInterval(refresh);
  }

  #stopRefresh = () => {};

  stop(): void {
    this.#stopRefresh();
    clearTimeout(this.#timer);
    const p = this.#p2p;
    if (!p) return;
    p.libp2p.services.pubsub.removeEventListener("message", p.onMessage);
    p.libp2p.services.pubsub.removeEventListener("subscription-change", p.onSubs);
    this.#p2p = undefined;
  }

  #topic(project: string): string {
    return `/tau/${this.#p2p?.cloud}/logs/${project}`;
  }

  #refreshRemote(): void {
    const p = this.#p2p;
    if (!p) return;
    const prefix = `/tau/${p.cloud}/logs/`;
    const pubsub = p.libp2p.services.pubsub;
    this.#remote.clear();
    // gossipsub keeps every peer's topics, also those this node has not joined; its public getSubscribers needs the
    // topic name, which is what we are looking for, so read the map (topic -> peer ids) it keeps them in.
    const topics = (pubsub as unknown as { topics?: Map<string, Set<string>> }).topics;
    for (const [topic, peers] of topics ?? []) {
      if (!topic.startsWith(prefix) || peers.size === 0) continue;
      this.#remote.set(topic.slice(prefix.length), new Set(peers));
    }
  }

  #deliver(line: LogLine): void {
    for (const f of this.#followers.get(line.project) ?? []) {
      try {
        f(line);
      } catch { /* a follower that fails (its client went away) must not stop the others */ }
    }
  }

  #queue(line: LogLine): void {
    const batch = this.#pending.get(line.project) ?? [];
    if (batch.length >= BATCH_LINES) {
      this.#dropped.set(line.project, (this.#dropped.get(line.project) ?? 0) + 1);
      return;
    }
    batch.push(line);
    this.#pending.set(line.project, batch);
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.#flush(), BATCH_MS);
      Deno.unrefTimer(this.#timer);
    }
  }

  #flush(): void {
    this.#timer = undefined;
    const p = this.#p2p;
    for (const [project, lines] of this.#pending) {
      const dropped = this.#dropped.get(project);
      if (dropped) {
        lines.push({
          ...lines[lines.length - 1],
          stream: "trap",
          text: `${dropped} lines dropped (more than ${BATCH_LINES} in ${BATCH_MS} ms)`,
        });
      }
      p?.libp2p.services.pubsub.publish(this.#topic(project), encode(lines)).catch(() => {});
    }
    this.#pending.clear();
    this.#dropped.clear();
  }
}
