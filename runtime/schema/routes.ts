/** The route table (fqdn, method, path) a project serves, and the conflicts between routes. */
import type { Path } from "./fields.ts";
import type { ParsedResource, Report } from "./parse.ts";
import { resolveByName } from "./references.ts";
import type {
  ContainerResource,
  DomainResource,
  FunctionResource,
  ProjectConfig,
  RouteEntry,
  WebsiteResource,
} from "./types.ts";

interface SourcedRoute extends RouteEntry {
  file: string;
  /** Where in the YAML the path is declared, for issue lines. */
  at: Path;
}

function resourceKey(r: { app?: string; name: string }): string {
  return r.app !== undefined ? `${r.app}/${r.name}` : r.name;
}

function collect(config: ProjectConfig): SourcedRoute[] {
  const out: SourcedRoute[] = [];
  const fqdnsOf = (r: FunctionResource | WebsiteResource | ContainerResource, names: string[]) => {
    const fqdns = names
      .map((n) => resolveByName<DomainResource>(config.domains, "domain", r.app, n)?.fqdn)
      .filter((f): f is string => !!f);
    return [...new Set(fqdns)];
  };
  for (const f of config.functions) {
    for (const fqdn of fqdnsOf(f, f.trigger.domains)) {
      f.trigger.paths.forEach((path, i) =>
        out.push({
          fqdn,
          kind: "function",
          resource: resourceKey(f),
          method: f.trigger.method,
          path,
          file: f.file,
          at: ["trigger", "paths", i],
        })
      );
    }
  }
  // Websites answer GET (and HEAD, which the gateway maps to GET); containers take every method.
  const prefixes = (r: WebsiteResource | ContainerResource, kind: "website" | "container", method: string) => {
    for (const fqdn of fqdnsOf(r, r.domains)) {
      r.paths.forEach((path, i) =>
        out.push({ fqdn, kind, resource: resourceKey(r), method, path, file: r.file, at: ["paths", i] })
      );
    }
  };
  for (const w of config.websites) prefixes(w, "website", "GET");
  // A container without a port runs (a worker) but has nothing to route to.
  for (const c of config.containers) if (c.port !== undefined) prefixes(c, "container", "*");
  return out;
}

/** Every (fqdn, method, path) the project serves, with domain names resolved (application scope first). */
export function routesOf(config: ProjectConfig): RouteEntry[] {
  return collect(config).map(({ fqdn, kind, resource, method, path }) => ({ fqdn, kind, resource, method, path }));
}

function clash(a: RouteEntry, b: RouteEntry): boolean {
  if (a.fqdn !== b.fqdn || a.path !== b.path) return false;
  if (a.kind === "function" && b.kind === "function") {
    return a.method === b.method || a.method === "*" || b.method === "*";
  }
  return true;
}

/** Two functions on the same fqdn+method+path, or anything else on the same exact host+path, is an error. */
export function checkRouteConflicts(config: ProjectConfig, parsed: ParsedResource[], report: Report): void {
  const lineOfFile = new Map(parsed.map((p) => [p.resource.file, p.lineOf]));
  const seen: SourcedRoute[] = [];
  const reported = new Set<string>();
  for (const route of collect(config)) {
    const other = seen.find((s) => s.file !== route.file && clash(s, route));
    seen.push(route);
    if (!other) continue;
    const key = `${route.file}\u0000${route.fqdn}${route.path}`;
    if (reported.has(key)) continue;
    reported.add(key);
    const method = route.method === "*" ? "ANY" : route.method;
    report(
      route.file,
      route.at,
      `route ${method} ${route.fqdn}${route.path} is already served by ${other.kind} '${other.resource}' (${other.file})`,
      lineOfFile.get(route.file),
    );
  }
}
