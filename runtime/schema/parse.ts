/** parseProjectConfig: a config tree (relative path -> text) to a validated ProjectConfig plus issues. */
import { nameProblem, type Path, type ReadContext, readShape, type RefKind } from "./fields.ts";
import { APPLICATION_SHAPE, KIND_BY_FOLDER, type KindSpec, PROJECT_SHAPE } from "./kinds.ts";
import { projectId, resourceId, stableId } from "./ids.ts";
import { parseYaml, type YamlSource } from "./yaml_source.ts";
import { checkReferences } from "./references.ts";
import { checkRouteConflicts } from "./routes.ts";
import type { AnyResource, ApplicationInfo, ConfigIssue, ParseResult, ProjectConfig } from "./types.ts";

export interface Ref {
  kind: RefKind;
  name: string;
  path: Path;
}

/** A resource with what cross-file checks need to point back at its YAML. */
export interface ParsedResource {
  resource: AnyResource;
  refs: Ref[];
  lineOf(path: Path): number | undefined;
}

export type Report = (
  file: string,
  path: Path | undefined,
  message: string,
  lineOf?: (p: Path) => number | undefined,
) => void;

type Located = { file: string; app?: string; spec: KindSpec; name: string } | {
  file: string;
  app: string;
  config: true;
};

/** Which resource a path is; undefined for files tau ignores (unknown folders, README, ...). */
function classify(file: string, report: Report): Located | undefined {
  const parts = file.split("/");
  const stem = (p: string) => p.replace(/\.yaml$/, "");
  let app: string | undefined;
  let rest = parts;
  if (parts[0] === "applications") {
    if (parts.length === 3 && parts[2] === "config.yaml") return { file, app: parts[1], config: true };
    if (parts.length < 4) return undefined;
    app = parts[1];
    rest = parts.slice(2);
  }
  const spec = KIND_BY_FOLDER.get(rest[0]);
  if (!spec) return undefined;
  if (rest.length !== 2) {
    report(file, undefined, `unexpected file: resources are ${rest[0]}/<name>.yaml, one level deep`);
    return undefined;
  }
  return { file, app, spec, name: stem(rest[1]) };
}

export function parseProjectConfig(input: Record<string, string>): ParseResult {
  // Accept "./x.yaml" and Windows separators from callers that build the map themselves.
  const files = Object.fromEntries(
    Object.entries(input).map(([f, t]) => [f.replace(/\\/g, "/").replace(/^\.\//, ""), t]),
  );
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const at = (list: ConfigIssue[]): Report => (file, path, message, lineOf) => {
    const line = path && lineOf ? lineOf(path) : undefined;
    list.push(line === undefined ? { file, message } : { file, line, message });
  };
  const report = at(issues);
  const warn = at(warnings);
  const read = (file: string): YamlSource | undefined => {
    const src = parseYaml(files[file]);
    for (const e of src.errors) issues.push({ file, ...(e.line ? { line: e.line } : {}), message: e.message });
    if (src.errors.length) return undefined;
    return src;
  };
  const yamlFiles = Object.keys(files).filter((f) => f.endsWith(".yaml") && !f.split("/").includes(".git")).sort();

  // The project config first: resource ids derive from the project id.
  if (!("config.yaml" in files)) {
    return { issues: [{ file: "config.yaml", message: "config.yaml is missing: this is not a tau config repo" }] };
  }
  const projectSrc = read("config.yaml");
  const projectCtx = contextFor("config.yaml", "project", projectSrc, report, warn);
  const p = projectSrc ? readShape(PROJECT_SHAPE, projectSrc.value, [], projectCtx) : undefined;
  const project: ProjectConfig = {
    id: p?.id || projectId(p?.name || "project"),
    name: p?.name ?? "",
    description: p?.description ?? "",
    tags: p?.tags ?? [],
    applications: [],
    functions: [],
    websites: [],
    domains: [],
    libraries: [],
    containers: [],
    databases: [],
    storages: [],
    messaging: [],
    services: [],
    smartops: [],
    warnings: [],
  };

  const located = yamlFiles.filter((f) => f !== "config.yaml").map((f) => classify(f, report)).filter((l) => !!l);
  const apps = new Map<string, ApplicationInfo>();
  for (const loc of located) {
    if (!("config" in loc)) continue;
    const problem = nameProblem(loc.app, "application name");
    if (problem) report(loc.file, undefined, problem);
    const src = read(loc.file);
    const ctx = contextFor(loc.file, loc.app, src, report, warn);
    const v = src ? readShape(APPLICATION_SHAPE, src.value, [], ctx) : undefined;
    if (v?.name && v.name !== loc.app) {
      ctx.issue(["name"], `name '${v.name}' must match the folder name '${loc.app}' (or be left out)`);
    }
    const info = {
      id: v?.id || stableId(project.id, "application", loc.app),
      name: loc.app,
      description: v?.description ?? "",
      tags: v?.tags ?? [],
    };
    apps.set(loc.app, info);
    project.applications.push(info);
  }

  const parsed: ParsedResource[] = [];
  const reportedApps = new Set<string>();
  for (const loc of located) {
    if ("config" in loc) continue;
    if (loc.app !== undefined && !apps.has(loc.app) && !reportedApps.has(loc.app)) {
      reportedApps.add(loc.app);
      report(`applications/${loc.app}/config.yaml`, undefined, `application '${loc.app}' has no config.yaml`);
    }
    const one = parseResource(loc, project.id, read, report, warn);
    if (one) parsed.push(one);
  }

  // Ids are unique per scope (the project, each application), as in Taubyte: the same id may appear in two scopes.
  const idOwner = new Map<string, string>();
  for (const { resource, lineOf } of parsed) {
    const scoped = `${resource.app ?? ""}\u0000${resource.id}`;
    const owner = idOwner.get(scoped);
    if (owner) report(resource.file, ["id"], `id '${resource.id}' is already used by ${owner}`, lineOf);
    else idOwner.set(scoped, resource.file);
    const r = resource;
    if (r.kind === "function") project.functions.push(r);
    else if (r.kind === "website") project.websites.push(r);
    else if (r.kind === "domain") project.domains.push(r);
    else if (r.kind === "library") project.libraries.push(r);
    else if (r.kind === "container") project.containers.push(r);
    else if (r.kind === "database") project.databases.push(r);
    else if (r.kind === "storage") project.storages.push(r);
    else if (r.kind === "messaging") project.messaging.push(r);
    else if (r.kind === "service") project.services.push(r);
    else project.smartops.push(r);
  }

  checkReferences(parsed, report);
  checkRouteConflicts(project, parsed, report);
  // Reading order is per check; users read issues per file, top to bottom.
  const byPlace = (a: ConfigIssue, b: ConfigIssue) =>
    a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0);
  issues.sort(byPlace);
  project.warnings = warnings.sort(byPlace);
  return issues.length ? { issues } : { config: project, issues };
}

function parseResource(
  loc: Extract<Located, { spec: KindSpec }>,
  projectIdValue: string,
  read: (file: string) => YamlSource | undefined,
  report: Report,
  warn: Report,
): ParsedResource | undefined {
  const problem = nameProblem(loc.name);
  if (problem) {
    report(loc.file, undefined, problem);
    return undefined;
  }
  const src = read(loc.file);
  if (!src) return undefined;
  const refs: Ref[] = [];
  const ctx = contextFor(loc.file, loc.name, src, report, warn, refs);
  const values = readShape(loc.spec.shape, src.value, [], ctx, loc.spec.loose);
  if (!values) return undefined;
  loc.spec.check?.(values, ctx, src.value);
  if (values.name && values.name !== loc.name) {
    ctx.issue(["name"], `name '${values.name}' must match the file name '${loc.name}' (or be left out)`);
  }
  const base = {
    id: (typeof values.id === "string" && values.id) || resourceId(projectIdValue, loc.app, loc.spec.kind, loc.name),
    name: loc.name,
    ...(loc.app !== undefined ? { app: loc.app } : {}),
    file: loc.file,
  };
  return { resource: loc.spec.build(values, base, src.value), refs, lineOf: src.lineOf };
}

function contextFor(
  file: string,
  name: string,
  src: YamlSource | undefined,
  report: Report,
  warn: Report,
  refs?: Ref[],
): ReadContext {
  const lineOf = (path: Path) => src?.lineOf(path);
  return {
    name,
    issue: (path, message) => report(file, path, message, lineOf),
    warn: (path, message) => warn(file, path, message, lineOf),
    ref: (kind, refName, path) => refs?.push({ kind, name: refName, path }),
  };
}
