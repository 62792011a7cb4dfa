/**
 * The node's message bus. A message published on this node (by a function, or by a WebSocket client) is delivered
 * here at once, sent to the other nodes over gossipsub (transport.ts) unless its resource is `local`, and runs the
 * channel's functions: `local: true` ones on every node that receives it, the others once in the cloud (below).
 * On `tau dev` there is no transport: everything is in-process. docs/events.md ("Pubsub messaging") is the user's
 * page for these rules.
 *
 * Once in the cloud: only the node a message was published on decides where its non-local functions run. A node
 * receiving it over gossipsub never runs them. The publishing node runs them itself when it runs substrate, else it
 * hands the message to one live substrate node (least loaded, one RPC, no retry elsewhere) which runs them, once per
 * message id. So each message's non-local functions run on exactly one node, at most once (a failed hand-off is
 * logged, not retried on another node, which could otherwise run them twice).
 */
import type { EventFunctions } from "../events/functions.ts";
import type { DeploymentRecord, FunctionDeployment } from "../tns/records.ts";
import { HostError } from "../../runtime/wasm/host/services.ts";
import { LruMap } from "../../runtime/wasm/lru.ts";
import { channelKey, type ChannelRef, resolveChannel } from "./channels.ts";

/** Largest message accepted (a publish or a WebSocket frame); gossipsub's own cap is 1 MiB with its envelope. */
export const MAX_MESSAGE_BYTES = 512 << 10;
/** Function runs in flight on this node for messages; beyond, new runs are dropped and logged (not queued). */
const MAX_RUNS = 1024;
/** Message ids remembered, to never deliver one twice on a node (gossipsub dedups too, but only for a while). */
const SEEN_IDS = 65536;

export interface PubsubMessage {
  id: string;
  project: string;
  scope: string;
  channel: string;
  data: Uint8Array;
  /** The WebSocket client that sent it: not echoed back to it (as Taubyte's bridge). */
  from?: string;
}

/** A WebSocket client of one channel (websocket.ts). */
export interface ChannelClient {
  readonly id: string;
  deliver(m: PubsubMessage): void;
}

/** How messages cross nodes (transport.ts); absent on `tau dev`. */
export interface PubsubTransport {
  publish(key: string, m: PubsubMessage): Promise<void>;
  /** The channels this node wants messages of (WebSocket clients, `local: true` functions): topics follow it. */
  want(keys: ReadonlySet<string>): void;
  /** Hands a message's non-local functions to one substrate node; false when none took it. */
  handOff(m: PubsubMessage): Promise<boolean>;
  close(): Promise<void>;
}

/** Remembers the last SEEN_IDS ids (the runtime's LRU map, as a set). */
class SeenIds {
  readonly #ids = new LruMap<string, true>(SEEN_IDS);
  /** True the first time `id` is seen. */
  add(id: string): boolean {
    if (this.#ids.get(id)) return false;
    this.#ids.set(id, true);
    return true;
  }
}

export class PubsubBus {
  readonly #events: EventFunctions;
  readonly #log: (line: string) => void;
  #transport?: PubsubTransport;
  readonly #prefix = crypto.getRandomValues(new Uint32Array(2)).reduce((s, n) => s + n.toString(36), "");
  #next = 0;
  readonly #delivered = new SeenIds();
  readonly #ranCloud = new SeenIds();
  readonly #clients = new Map<string, Set<ChannelClient>>();
  /** Channels with a `local: true` function served here (recomputed after each flip). */
  #localKeys = new Set<string>();
  #runs = 0;
  #closed = false;

  constructor(deps: { events: EventFunctions; log: (line: string) => void }) {
    this.#events = deps.events;
    this.#log = deps.log;
    deps.events.onChange(() => void this.#refreshLocal());
  }

  /** Set once the cluster is up (transport.ts); then the node subscribes to what it wants. */
  async attach(transport: PubsubTransport): Promise<void> {
    this.#transport = transport;
    await this.#refreshLocal();
  }

  /** Resolves a channel for a function or a client of `project` (in `app`); HostError when none matches. */
  async resolve(project: string, app: string | undefined, channel: string): Promise<ChannelRef> {
    const record = await this.#events.record(project);
    if (!record) throw new HostError("unbound", `project ${project} serves no deployment on this node`);
    return resolveChannel(record, app, channel);
  }

  /** Publishes `data` on the channel `ref`; resolves once it is delivered here and sent on. */
  async publish(ref: ChannelRef, data: Uint8Array, from?: string): Promise<PubsubMessage> {
    if (this.#closed) throw new HostError("failed", "the node is shutting down");
    if (data.length > MAX_MESSAGE_BYTES) {
      throw new HostError(
        "too-large",
        `a message of ${data.length} bytes on channel ${ref.channel} is over the ${MAX_MESSAGE_BYTES}-byte limit`,
      );
    }
    const m: PubsubMessage = {
      id: `${this.#prefix}.${(this.#next++).toString(36)}`,
      project: ref.project,
      scope: ref.scope,
      channel: ref.channel,
      data,
      ...(from ? { from } : {}),
    };
    this.#delivered.add(m.id);
    this.#ranCloud.add(m.id);
    const sent = !ref.binding.local && this.#transport
      ? this.#transport.publish(channelKey(m.project, m.scope, m.channel), m).catch((err) =>
        this.#log(`pubsub: sending message ${m.id} on ${m.channel} to other nodes failed: ${err}`)
      )
      : undefined;
    this.#deliverHere(m);
    void this.#runCloud(m);
    await sent;
    return m;
  }

  /** A message from another node (gossipsub): WebSocket clients and `local: true` functions here. */
  receive(m: PubsubMessage): void {
    if (this.#closed || !this.#delivered.add(m.id)) return;
    this.#deliverHere(m);
  }

  /** A message handed to this node to run its non-local functions (transport.ts, on substrate nodes). */
  runHandedOff(m: PubsubMessage): void {
    if (this.#closed || !this.#ranCloud.add(m.id)) return;
    void this.#runFunctions(m, false);
  }

  /** Adds a WebSocket client of a channel; returns its removal. */
  join(ref: ChannelRef, client: ChannelClient): () => void {
    const key = channelKey(ref.project, ref.scope, ref.channel);
    let set = this.#clients.get(key);
    if (!set) {
      this.#clients.set(key, set = new Set());
      this.#wantChanged();
    }
    set.add(client);
    return () => {
      const s = this.#clients.get(key);
      if (!s?.delete(client) || s.size > 0) return;
      this.#clients.delete(key);
      this.#wantChanged();
    };
  }

  /** How many WebSocket clients are connected here (for tests and benches). */
  clients(): number {
    let n = 0;
    for (const s of this.#clients.values()) n += s.size;
    return n;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#transport?.close();
  }

  #deliverHere(m: PubsubMessage): void {
    const key = channelKey(m.project, m.scope, m.channel);
    for (const client of this.#clients.get(key) ?? []) {
      if (client.id === m.from) continue;
      try {
        client.deliver(m);
      } catch (err) {
        this.#log(`pubsub: delivering ${m.id} to a WebSocket client of ${m.channel} failed: ${err}`);
      }
    }
    if (this.#localKeys.has(key)) void this.#runFunctions(m, true);
  }

  async #runCloud(m: PubsubMessage): Promise<void> {
    if (this.#events.runsFunctions) return await this.#runFunctions(m, false);
    if (!this.#transport) return;
    const subscribed = (await this.#matching(m, false)).length > 0;
    if (!subscribed) return;
    const taken = await this.#transport.handOff(m).catch((err) => {
      this.#log(`pubsub: handing message ${m.id} on ${m.channel} to a substrate node failed: ${err}`);
      return false;
    });
    if (!taken) this.#log(`pubsub: message ${m.id} on ${m.channel}: no substrate node ran its functions`);
  }

  /** The served functions of the message's project subscribed to its channel (in its scope), local or not. */
  async #matching(m: PubsubMessage, local: boolean): Promise<{ record: DeploymentRecord; fn: FunctionDeployment }[]> {
    const out: { record: DeploymentRecord; fn: FunctionDeployment }[] = [];
    for (const { record, fn } of await this.#events.withTrigger("pubsub")) {
      if (record.project !== m.project || fn.trigger.channel !== m.channel || fn.trigger.local !== local) continue;
      if (scopeOf(record, fn) === m.scope) out.push({ record, fn });
    }
    return out;
  }

  async #runFunctions(m: PubsubMessage, local: boolean): Promise<void> {
    if (!this.#events.runsFunctions) return;
    let matching;
    try {
      matching = await this.#matching(m, local);
    } catch (err) {
      this.#log(`pubsub: listing the functions of channel ${m.channel} failed: ${err}`);
      return;
    }
    await Promise.all(matching.map(async ({ record, fn }) => {
      const name = `${record.project}/${fn.app ? `${fn.app}/` : ""}${fn.name}`;
      if (this.#runs >= MAX_RUNS) {
        this.#log(`pubsub: function ${name} skipped message ${m.id} on ${m.channel}: ${MAX_RUNS} runs in flight`);
        return;
      }
      this.#runs++;
      try {
        const result = await this.#events.invoke(record, fn, { kind: "pubsub", channel: m.channel, data: m.data });
        if (!result.ok) {
          this.#log(`pubsub: function ${name} failed on message ${m.id} (channel ${m.channel}): ${result.message}`);
        }
      } catch (err) {
        this.#log(`pubsub: function ${name} could not run for message ${m.id} (channel ${m.channel}): ${err}`);
      } finally {
        this.#runs--;
      }
    }));
  }

  async #refreshLocal(): Promise<void> {
    if (!this.#events.runsFunctions) return;
    try {
      const keys = new Set<string>();
      for (const { record, fn } of await this.#events.withTrigger("pubsub")) {
        if (!fn.trigger.local) continue;
        const scope = scopeOf(record, fn);
        if (scope !== undefined) keys.add(channelKey(record.project, scope, fn.trigger.channel));
      }
      this.#localKeys = keys;
      this.#wantChanged();
    } catch (err) {
      this.#log(`pubsub: reading the served pubsub functions failed: ${err}`);
    }
  }

  #wantChanged(): void {
    if (!this.#transport) return;
    this.#transport.want(new Set([...this.#clients.keys(), ...this.#localKeys]));
  }
}

/** The scope a function's trigger channel resolves to, or undefined when no resource matches it (it never runs). */
function scopeOf(record: DeploymentRecord, fn: FunctionDeployment & { trigger: { channel: string } }) {
  try {
    return resolveChannel(record, fn.app, fn.trigger.channel).scope;
  } catch {
    return undefined;
  }
}
