/** The parsed, validated shape of a config repo. Everything here is plain data (JSON-serialisable). */

/** One problem in the config repo. `file` is relative to the config repo root, `line` is 1-based. */
export interface ConfigIssue {
  file: string;
  line?: number;
  message: string;
}

interface Common {
  id: string;
  name: string;
  /** Application name when the resource lives under applications/<app>/. */
  app?: string;
  description: string;
  tags: string[];
  /** The YAML file it came from, relative to the config repo root. */
  file: string;
}

export interface FunctionResource extends Common {
  kind: "function";
  trigger: {
    /**
     * https and http are HTTP requests (the same locally); pubsub a message on a channel; p2p a libp2p command; cron
     * a tick of `schedule` (tau's own).
     */
    type: "https" | "http" | "pubsub" | "p2p" | "cron";
    /** Upper case; "*" matches every method (HTTP triggers). */
    method: string;
    /** HTTP triggers; empty for the others. */
    paths: string[];
    /** Names of domain resources (resolved app scope first, then project scope): trigger.domains and domains. */
    domains: string[];
    /** pubsub: the channel it subscribes to. */
    channel?: string;
    /** p2p: the protocol (Taubyte also calls it `service`) and the command it answers. */
    protocol?: string;
    command?: string;
    /** pubsub and p2p: only messages and commands from this node. */
    local: boolean;
    /** cron: five UTC cron fields or `@every <duration>` (runtime/cron); `catchup` runs ticks nobody ran. */
    schedule?: string;
    catchup?: boolean;
  };
  /** Names of the project secrets it may read (tau's own field); their values are never in the config. */
  secrets: string[];
  /** "." (code repo functions/<name>/) or "libraries/<lib>" (code repo libraries/<lib>/). */
  source: string;
  execution: { timeoutMs: number; memoryBytes: number; bodyBytes: number; call: string };
  /** Loopback, private and link-local targets its outbound HTTP may reach (runtime/net/outbound.ts). */
  outbound: { allow: string[] };
}

/** A repo of its own named by a Taubyte config (`source: {github: {id, fullname}, branch}`). */
export interface RepoSource {
  provider: "github";
  id: string;
  fullname: string;
  branch?: string;
}

export interface WebsiteResource extends Common {
  kind: "website";
  domains: string[];
  paths: string[];
  source: string;
  /** Set when the config names a repo of its own; tau builds the site from `source` of the code repo meanwhile. */
  repo?: RepoSource;
  /** Folder inside the website's code to serve, when set explicitly. */
  build?: string;
  spa: boolean;
}

export interface DomainResource extends Common {
  kind: "domain";
  fqdn: string;
  /** Carried for Taubyte compatibility; locally every domain is served over plain HTTP. */
  certificate?: { type: "auto" | "inline"; cert?: string; key?: string };
}

export interface LibraryResource extends Common {
  kind: "library";
  source: string;
  /** Set when the config names a repo of its own (see WebsiteResource.repo). */
  repo?: RepoSource;
}

export interface ContainerResource extends Common {
  kind: "container";
  /** Image reference; the build pins it to the image id it resolves to. */
  image: string;
  /** The HTTP port the gateway proxies to; a container without one runs but is not routed. */
  port?: number;
  command?: string[];
  env: Record<string, string>;
  limits: { memoryBytes?: number; cpus?: number; pids?: number };
  replicas: number;
  workdir?: string;
  hostname?: string;
  /** A deploy waits (at most timeoutMs) until the container answers `path` on its port. */
  readiness: { path: string; timeoutMs: number };
  domains: string[];
  paths: string[];
}

export interface DatabaseResource extends Common {
  kind: "database";
  /** The database name it serves; a regular expression when `regex`. */
  match: string;
  regex: boolean;
  network: "all" | "subnet" | "host";
  sizeBytes: number;
}

export interface StorageResource extends Common {
  kind: "storage";
  match: string;
  regex: boolean;
  network: "all" | "subnet" | "host";
  type: "object" | "streaming";
  /** object storages */
  versioning?: boolean;
  /** streaming storages */
  ttlMs?: number;
  sizeBytes: number;
}

export interface MessagingResource extends Common {
  kind: "messaging";
  local: boolean;
  match: string;
  regex: boolean;
  websocket: boolean;
  mqtt: boolean;
}

export interface ServiceResource extends Common {
  kind: "service";
  protocol: string;
}

export interface SmartopsResource extends Common {
  kind: "smartops";
  source: string;
  execution: { timeoutMs: number; memoryBytes: number; call: string };
}

export interface ApplicationInfo {
  id: string;
  name: string;
  description: string;
  tags: string[];
}

export interface ProjectConfig {
  id: string;
  name: string;
  description: string;
  tags: string[];
  applications: ApplicationInfo[];
  functions: FunctionResource[];
  websites: WebsiteResource[];
  domains: DomainResource[];
  libraries: LibraryResource[];
  containers: ContainerResource[];
  databases: DatabaseResource[];
  storages: StorageResource[];
  messaging: MessagingResource[];
  services: ServiceResource[];
  smartops: SmartopsResource[];
  /** What is accepted but not (fully) acted on, with file and line: tau validate and the build log print them. */
  warnings: ConfigIssue[];
}

export type AnyResource =
  | FunctionResource
  | WebsiteResource
  | DomainResource
  | LibraryResource
  | ContainerResource
  | DatabaseResource
  | StorageResource
  | MessagingResource
  | ServiceResource
  | SmartopsResource;
export type ResourceKind = AnyResource["kind"];

export interface ParseResult {
  config?: ProjectConfig;
  issues: ConfigIssue[];
}

/** Route table entry for the TNS index. */
export interface RouteEntry {
  fqdn: string;
  kind: "function" | "website" | "container";
  /** "app/name" for application resources, "name" for project resources. */
  resource: string;
  method: string;
  path: string;
}
