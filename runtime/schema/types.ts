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
    type: "https" | "http";
    /** Upper case; "*" matches every method. */
    method: string;
    paths: string[];
    /** Names of domain resources (resolved app scope first, then project scope). */
    domains: string[];
  };
  /** "." (code repo functions/<name>/) or "libraries/<lib>" (code repo libraries/<lib>/). */
  source: string;
  execution: { timeoutMs: number; memoryBytes: number; bodyBytes: number; call: string };
}

export interface WebsiteResource extends Common {
  kind: "website";
  domains: string[];
  paths: string[];
  source: string;
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

export interface OtherResource {
  kind: "database" | "storage" | "messaging" | "service";
  id: string;
  name: string;
  app?: string;
  /** The YAML mapping as written (minus nothing): tau does not run these yet, it carries them. */
  fields: Record<string, unknown>;
  file: string;
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
  others: OtherResource[];
}

export type AnyResource =
  | FunctionResource
  | WebsiteResource
  | DomainResource
  | LibraryResource
  | ContainerResource
  | OtherResource;
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
