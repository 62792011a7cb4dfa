/**
 * What a function may ask of the node beyond its own memory: databases, storages, globals, content and outbound
 * HTTP. The node (services/) implements these per function, from what the function's deployment binds (workerd's
 * bindings: nothing ambient); the ABIs (tau's and Taubyte's `taubyte/sdk`) are thin adapters over them.
 *
 * Every operation is async and takes and returns structured-clone friendly values only: a call made on an executor
 * Worker crosses to the serving thread as a message (host/bridge.ts) and runs there, where the node's stores live.
 * A failure is a HostError: its code is what the guest sees (an errno), its message goes to the function's log.
 */

export type HostErrorCode =
  /** The key, file, version or CID does not exist. */
  | "not-found"
  /** The database or storage name matches no resource the function can see; or the call needs what it lacks. */
  | "unbound"
  /** A value, object or database over its size limit. */
  | "too-large"
  /** Outbound HTTP to an address the function may not reach. */
  | "denied"
  /** Bad arguments from the guest (an invalid URL, method, CID). */
  | "invalid"
  /** The call's deadline passed while the host was working on it. */
  | "timeout"
  /** Anything else: the node could not do it (a peer down, a disk error). */
  | "failed";

export class HostError extends Error {
  constructor(readonly code: HostErrorCode, message: string) {
    super(message);
    this.name = "HostError";
  }
}

/**
 * Key-value databases: one per database *name* a function opens, found by the resources' `match` (a regex when
 * `useRegex`), scoped to the project (resources at the project level) or to an application (resources under it).
 */
export interface DatabaseOps {
  /** Throws HostError("unbound") when no database resource matches `db`; otherwise resolves (opening is free). */
  open(db: string): Promise<void>;
  get(db: string, key: string): Promise<Uint8Array | null>;
  /** HostError("too-large") when the value alone, or the database with it, is over its `storage.size`. */
  put(db: string, key: string, value: Uint8Array): Promise<void>;
  delete(db: string, key: string): Promise<void>;
  /** Keys starting with `prefix`, sorted. */
  list(db: string, prefix: string): Promise<string[]>;
}

/** Object storage (versioned files on the content store) and streaming storage (files that expire after `ttl`). */
export interface StorageOps {
  open(storage: string): Promise<void>;
  /** Stores a new version (or replaces the current one with `overwrite`); resolves with its version number (1, 2...). */
  add(storage: string, file: string, data: Uint8Array, overwrite: boolean): Promise<number>;
  /** `version` 0 is the current one. Null when the file (or that version) does not exist. */
  get(storage: string, file: string, version: number): Promise<Uint8Array | null>;
  versions(storage: string, file: string): Promise<number[]>;
  current(storage: string, file: string): Promise<number | null>;
  /** One version, or every version with `all` (`version` 0 and not `all`: the current one). */
  delete(storage: string, file: string, version: number, all: boolean): Promise<void>;
  files(storage: string): Promise<string[]>;
  /** The CID of the file's current version. */
  cid(storage: string, file: string): Promise<string | null>;
  usage(storage: string): Promise<{ used: number; capacity: number }>;
}

/** Which functions share a global value: the whole project, one application, or one function. */
export interface GlobalScope {
  application: boolean;
  function: boolean;
}

export interface GlobalsOps {
  get(name: string, scope: GlobalScope): Promise<Uint8Array | null>;
  put(name: string, scope: GlobalScope, value: Uint8Array): Promise<void>;
}

/** The cloud's content store (Helia): immutable files by CID. */
export interface ContentOps {
  add(data: Uint8Array): Promise<string>;
  cat(cid: string): Promise<Uint8Array>;
}

export interface OutboundRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array | null;
}

export interface OutboundResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
  /** The URL that answered, after redirects. */
  url: string;
}

export interface OutboundOps {
  /** HostError("denied") for loopback, private and link-local targets not on the function's allow-list. */
  fetch(req: OutboundRequest): Promise<OutboundResponse>;
}

/**
 * Project secrets (tau's own): only those the function's config lists. HostError("not-found") for a listed secret
 * nobody set, HostError("unbound") for one the config does not list; each message says what to do.
 */
export interface SecretOps {
  get(name: string): Promise<Uint8Array>;
}

/**
 * Commands to p2p functions (Taubyte's `p2p/node`): bound per function to its own project, so a function can only
 * reach the p2p functions of its own project. Peers are libp2p peer ids ("local" on `tau dev`).
 */
export interface P2pOps {
  /**
   * Sends `command` on `protocol` with `data` to the function of this project that answers it (on `to` when given,
   * else wherever the cloud runs functions); resolves with its answer. HostError "unbound": the project has no such
   * protocol; "not-found": no function answers that command; "too-large": data over the bound; "failed": the peer
   * could not be reached, or the function trapped or timed out (the message says which).
   */
  send(protocol: string, command: string, data: Uint8Array, to: string | null): Promise<Uint8Array>;
  /** The protocol as the cloud serves it for this project; HostError "unbound" when the project has no such one. */
  listen(protocol: string): Promise<string>;
  /** Up to `max` other nodes that answer commands (peer ids, least loaded first). */
  discover(max: number): Promise<string[]>;
}

/**
 * Pubsub messaging (services/pubsub): channels of the function's own project only, each matched by a messaging
 * resource of its application or project. HostError("unbound") names the channel and the file to add.
 */
export interface PubsubOps {
  /** Delivers `data` to the channel's subscribed functions and WebSocket clients; resolves once it is sent. */
  publish(channel: string, data: Uint8Array): Promise<void>;
  /** The URL a browser opens: `ws://<domain>:<ws port>/ws-<hash>/<channel>` (docs/events.md says why not relative). */
  webSocketURL(channel: string): Promise<string>;
  /** Checks the channel exists (subscriptions are the functions' pubsub triggers: docs/events.md). */
  subscribe(channel: string): Promise<void>;
}

/** Who is calling (Taubyte's `self` calls); plain data, known before the call starts. */
export interface SelfInfo {
  project: string;
  application: string;
  /** The function's resource id. */
  id: string;
  branch: string;
  commit: string;
}

/** Everything bound to one function; each field may be absent (a call then answers "unbound"). */
export interface HostServices {
  database?: DatabaseOps;
  storage?: StorageOps;
  globals?: GlobalsOps;
  content?: ContentOps;
  http?: OutboundOps;
  secrets?: SecretOps;
  p2p?: P2pOps;
  pubsub?: PubsubOps;
}

export type HostCapability = keyof HostServices;
