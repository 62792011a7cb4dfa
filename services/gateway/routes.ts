/**
 * Route tables compiled from a deployment record, one per host. Matching is "most specific wins":
 * an exact function path, then a path with :params (more static segments first), then the longest prefix among
 * function wildcards (`/files/*`) and website paths, a function winning a tie with a website.
 */
import type { ContainerDeployment, DeploymentRecord, FunctionDeployment, WebsiteDeployment } from "../tns/records.ts";

interface PatternRoute {
  method: string;
  segments: string[];
  statics: number;
  fn: FunctionDeployment;
}

interface PrefixRoute {
  method: string; // "*" for websites and containers
  prefix: string; // normalised, no trailing slash ("" for root)
  fn?: FunctionDeployment;
  site?: WebsiteDeployment;
  container?: ContainerDeployment;
}

export interface HostRoutes {
  project: string;
  /** The deployment the routes come from (what its functions are bound to: branch, commit, databases...). */
  record: DeploymentRecord;
  exact: Map<string, Map<string, FunctionDeployment>>;
  patterns: PatternRoute[];
  prefixes: PrefixRoute[];
}

export type RouteMatch =
  | { kind: "function"; fn: FunctionDeployment; params: Record<string, string> }
  | { kind: "website"; site: WebsiteDeployment; rest: string; prefix: string }
  | { kind: "container"; container: ContainerDeployment }
  | { kind: "method"; allow: string[] }
  /** a :param segment that is not valid percent-encoded UTF-8 (`/users/%E0%A4%A`): the client's error */
  | { kind: "bad-path"; segment: string }
  | { kind: "none" };

export function normalisePath(path: string): string {
  return path.length > 1 && path.endsWith("/") ? path.replace(/\/+$/, "") || "/" : path;
}

export function compileRoutes(record: DeploymentRecord): Map<string, HostRoutes> {
  const hosts = new Map<string, HostRoutes>();
  const hostOf = (fqdn: string) => {
    let h = hosts.get(fqdn);
    if (!h) hosts.set(fqdn, h = { project: record.project, record, exact: new Map(), patterns: [], prefixes: [] });
    return h;
  };
  for (const fn of record.functions) {
    for (const r of fn.routes) {
      const h = hostOf(r.fqdn);
      const path = normalisePath(r.path);
      if (path.endsWith("/*") || path === "*") {
        h.prefixes.push({ method: r.method, prefix: path.replace(/\/?\*$/, ""), fn });
      } else if (path.includes("/:")) {
        const segments = path.split("/").slice(1);
        h.patterns.push({ method: r.method, segments, statics: segments.filter((s) => !s.startsWith(":")).length, fn });
      } else {
        let byMethod = h.exact.get(path);
        if (!byMethod) h.exact.set(path, byMethod = new Map());
        byMethod.set(r.method, fn);
      }
    }
  }
  for (const site of record.websites) {
    for (const r of site.routes) {
      hostOf(r.fqdn).prefixes.push({ method: "*", prefix: normalisePath(r.path).replace(/\/$/, ""), site });
    }
  }
  for (const container of record.containers ?? []) {
    for (const r of container.routes) {
      hostOf(r.fqdn).prefixes.push({ method: "*", prefix: normalisePath(r.path).replace(/\/$/, ""), container });
    }
  }
  for (const h of hosts.values()) {
    h.patterns.sort((a, b) => b.statics - a.statics || b.segments.length - a.segments.length);
    h.prefixes.sort((a, b) => b.prefix.length - a.prefix.length || (a.fn ? -1 : 1) - (b.fn ? -1 : 1));
  }
  return hosts;
}

/** The params of a route without any: shared (frozen) rather than a new object per request. */
const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export function matchRoute(h: HostRoutes, method: string, rawPath: string): RouteMatch {
  const path = normalisePath(rawPath);
  const exact = h.exact.get(path);
  if (exact) {
    const fn = exact.get(method) ?? exact.get("*") ?? (method === "HEAD" ? exact.get("GET") : undefined);
    if (fn) return { kind: "function", fn, params: NO_PARAMS };
  }
  return matchSlow(h, method, path, exact);
}

/** Patterns and prefixes, and the methods a path allows (only built when nothing matched exactly). */
function matchSlow(h: HostRoutes, method: string, path: string, exact?: Map<string, FunctionDeployment>): RouteMatch {
  const allow = new Set<string>();
  if (exact) { for (const m of exact.keys()) allow.add(m); }
  if (h.patterns.length) {
    const parts = path.split("/").slice(1);
    for (const p of h.patterns) {
      if (p.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      let bad: string | undefined;
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = p.segments[i];
        if (seg.startsWith(":")) {
          if (parts[i] === "") ok = false;
          else {
            const value = decodeSegment(parts[i]);
            if (value === undefined) bad ??= parts[i];
            else params[seg.slice(1)] = value;
          }
        } else ok = seg === parts[i];
      }
      if (!ok) continue;
      if (bad !== undefined) return { kind: "bad-path", segment: bad };
      if (methodMatches(p.method, method)) return { kind: "function", fn: p.fn, params };
      allow.add(p.method);
    }
  }
  for (const p of h.prefixes) {
    if (p.prefix !== "" && path !== p.prefix && !(path.startsWith(p.prefix) && path[p.prefix.length] === "/")) continue;
    if (p.site) return { kind: "website", site: p.site, rest: path.slice(p.prefix.length), prefix: p.prefix };
    if (p.container) return { kind: "container", container: p.container };
    if (methodMatches(p.method, method)) {
      return { kind: "function", fn: p.fn!, params: { "*": path.slice(p.prefix.length + 1) } };
    }
    allow.add(p.method);
  }
  return allow.size ? { kind: "method", allow: [...allow] } : { kind: "none" };
}

function decodeSegment(segment: string): string | undefined {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function methodMatches(routeMethod: string, method: string): boolean {
  return routeMethod === method || routeMethod === "*" || (method === "HEAD" && routeMethod === "GET");
}
