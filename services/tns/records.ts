/**
 * What a deployment is: the immutable record a successful build publishes. The record itself is stored in Helia
 * (so its CID names the deployment); TNS keeps only small pointers to it in Deno KV.
 */
import type { DatabaseBinding, StorageBinding } from "../data/records.ts";
export interface FunctionDeployment {
  name: string;
  app?: string;
  id: string;
  /** CID of the prepared (metered, memory-capped) wasm module. */
  cid: string;
  call: string;
  timeoutMs: number;
  memoryBytes: number;
  /** Request bodies beyond this get 413; absent in records built before it existed (the default applies then). */
  bodyBytes?: number;
  /** Loopback, private and link-local targets its outbound HTTP may reach (absent: none). */
  outbound?: string[];
  routes: { fqdn: string; method: string; path: string }[];
  /** What runs it besides HTTP routes (absent: HTTP only, and in records built before events existed). */
  trigger?: EventTrigger;
  /** The smartops that must allow each call first, in tag order (labels of SmartopDeployment; absent: none). */
  smartops?: string[];
  /** Names of the project secrets it may read (services/secrets); never their values. */
  secrets?: string[];
}

/** A smartop as deployed: a function module that decides whether a call of the resources it guards goes ahead. */
export type SmartopDeployment = Pick<
  FunctionDeployment,
  "name" | "app" | "id" | "cid" | "call" | "timeoutMs" | "memoryBytes"
>;

/** A function's non-HTTP trigger as deployed (the config's `trigger`, resolved). */
export type EventTrigger =
  /** `local`: runs on every node that receives the message, not once in the cloud (services/pubsub). */
  | { type: "pubsub"; channel: string; local: boolean }
  /** `local`: answers only commands sent from this node. */
  | { type: "p2p"; protocol: string; command: string; local: boolean }
  /** A tick of `schedule` (runtime/cron), run once in the cloud (services/cron); `catchup`: missed ticks run later. */
  | { type: "cron"; schedule: string; catchup: boolean };

/** A messaging resource: which channels exist, and whether browsers may join them over a WebSocket. */
export interface MessagingBinding {
  name: string;
  app?: string;
  id: string;
  /** The channel name it declares, or a regular expression over names when `regex`. */
  match: string;
  regex: boolean;
  local: boolean;
  websocket: boolean;
  mqtt: boolean;
}

/** A p2p service resource: a protocol the project's functions answer commands on. */
export interface ServiceBinding {
  name: string;
  app?: string;
  id: string;
  protocol: string;
}

export interface WebsiteDeployment {
  name: string;
  app?: string;
  id: string;
  /** CID of the UnixFS directory served. */
  root: string;
  spa: boolean;
  routes: { fqdn: string; path: string }[];
  /** See FunctionDeployment.smartops. */
  smartops?: string[];
}

/** A container as deployed: the Statefile values with the image pinned to an id, so a rebuild never drifts. */
export interface ContainerDeployment {
  name: string;
  app?: string;
  id: string;
  /** What the config said (for people) and what it resolved to at build time (what runs). */
  image: string;
  imageId: string;
  port?: number;
  command?: string[];
  env: Record<string, string>;
  limits: { memoryBytes?: number; cpus?: number; pids?: number };
  replicas: number;
  workdir?: string;
  hostname?: string;
  /** Absent in records written before it existed: path "/", 30 s. */
  readiness?: { path: string; timeoutMs: number };
  /**
   * Hash of project, name and everything above that changes what runs. Equal keys are the same containers: a
   * deploy that leaves a container's config alone keeps its running replicas.
   */
  key: string;
  routes: { fqdn: string; path: string }[];
  /** See FunctionDeployment.smartops. */
  smartops?: string[];
}

export interface DeploymentRecord {
  project: string;
  branch: string;
  /** The commit whose push triggered the build (config or code repo). */
  commit: string;
  configCommit: string;
  codeCommit?: string;
  jobId: string;
  createdAt: string;
  functions: FunctionDeployment[];
  websites: WebsiteDeployment[];
  /** Absent in records written before containers existed. */
  containers?: ContainerDeployment[];
  /** The databases and storages its functions may open (absent in records written before they existed). */
  databases?: DatabaseBinding[];
  storages?: StorageBinding[];
  /** Its messaging and p2p service resources (absent in records written before events existed). */
  messaging?: MessagingBinding[];
  services?: ServiceBinding[];
  /** Its smartops, built (absent: none, and in records written before smartops ran). */
  smartops?: SmartopDeployment[];
}

/** The KV-side pointer to a record. `id` sorts by time, so history is a prefix listing. */
export interface DeploymentRef {
  id: string;
  cid: string;
  commit: string;
  configCommit: string;
  codeCommit?: string;
  jobId: string;
  createdAt: string;
  fqdns: string[];
}

export function fqdnsOf(record: DeploymentRecord): string[] {
  const all = new Set<string>();
  for (const f of record.functions) for (const r of f.routes) all.add(r.fqdn);
  for (const w of record.websites) for (const r of w.routes) all.add(r.fqdn);
  for (const c of record.containers ?? []) for (const r of c.routes) all.add(r.fqdn);
  return [...all].sort();
}

/** Host index keys are reversed FQDNs (com.example.api) so one domain's subdomains sit together in KV. */
export function reverseFqdn(fqdn: string): string {
  return fqdn.toLowerCase().split(".").reverse().join(".");
}
