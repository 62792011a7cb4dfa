/**
 * THE schema: every resource type is declared once here (folder, fields, defaults, checks, references). Parsing,
 * validation, the route table, the docs and `tau new` scaffolding all read these declarations.
 */
import {
  anything,
  bool,
  choice,
  derivedText,
  duration,
  type Field,
  list,
  nameProblem,
  pathText,
  readShape,
  requiredText,
  type Shape,
  size,
  text,
  type Values,
} from "./fields.ts";
import {
  fqdnProblem,
  HTTP_METHODS,
  normaliseMethod,
  prefixPathItem,
  refItem,
  relativeFolderProblem,
  routePathProblem,
  symbolProblem,
} from "./checks.ts";
import type { AnyResource, DomainResource, ResourceKind } from "./types.ts";
import { containerKind } from "./container_kind.ts";

/** What every resource gets besides its own fields. */
export interface Base {
  id: string;
  name: string;
  app?: string;
  file: string;
}

export interface KindSpec {
  kind: ResourceKind;
  /** Folder under the config repo root (or under applications/<app>/). */
  folder: string;
  doc: string;
  shape: Shape;
  /** Loose kinds carry unknown keys instead of reporting them. */
  loose?: boolean;
  build(values: Values, base: Base): AnyResource;
}

const common: Shape = {
  id: text("Stable id. Generated from project, scope, type and name when empty."),
  name: text("Optional; when present it must equal the file name."),
  description: text("Free text."),
  tags: list("Free-form labels.", { unique: true }),
};

const MiB = 1024 * 1024;

/** Function source: "." (its own folder) or "libraries/<lib>" (a library's code), which must exist. */
const functionSource: Field<string> = {
  doc: '"." = code repo functions/<name>/; "libraries/<lib>" = code repo libraries/<lib>/.',
  defaultValue: () => ".",
  read(raw, path, ctx) {
    const v = typeof raw === "string" ? raw.replace(/\/+$/, "") : undefined;
    if (v === ".") return v;
    const lib = v?.match(/^libraries\/([^/]+)$/)?.[1];
    if (lib === undefined) {
      ctx.issue(path, `${pathText(path)} ${JSON.stringify(raw)} must be "." or "libraries/<library name>"`);
      return undefined;
    }
    const problem = nameProblem(lib, "library name");
    if (problem) {
      ctx.issue(path, problem);
      return undefined;
    }
    ctx.ref("library", lib, path);
    return v;
  },
};

const certificate: Field<DomainResource["certificate"]> = {
  doc: "Optional {type: auto|inline, cert, key}; carried for Taubyte compatibility.",
  read(raw, path, ctx) {
    const shape: Shape = {
      type: choice("auto: issued for you; inline: cert and key below.", ["auto", "inline"], "auto"),
      cert: text("PEM certificate (inline)."),
      key: text("PEM private key (inline)."),
    };
    const v = readShape(shape, raw, path, ctx);
    if (!v) return undefined;
    return { type: v.type, ...(v.cert ? { cert: v.cert } : {}), ...(v.key ? { key: v.key } : {}) };
  },
};

function other(kind: "database" | "storage" | "messaging" | "service", folder: string): KindSpec {
  return {
    kind,
    folder,
    doc: `Parsed and carried as-is (tau does not run ${folder} yet); names and common fields are checked.`,
    shape: { ...common, description: anything("Free text."), tags: anything("Labels.") },
    loose: true,
    build: (v, base) => {
      const fields: Record<string, unknown> = { ...v };
      for (const k of ["id", "name"]) delete fields[k];
      for (const k of ["description", "tags"]) if (fields[k] === undefined) delete fields[k];
      return { kind, ...base, fields };
    },
  };
}

export const KINDS: KindSpec[] = [
  {
    kind: "function",
    folder: "functions",
    doc: "A WebAssembly function served over HTTP.",
    shape: {
      ...common,
      source: functionSource,
      trigger: {
        doc: "When the function runs.",
        fields: {
          type: choice("https or http (the same locally).", ["https", "http"], "https", {
            what: "a supported trigger type (https, http)",
          }),
          method: choice("HTTP method, or ANY / * for all.", [...HTTP_METHODS, "*"], "GET", {
            what: "an HTTP method",
            normalise: normaliseMethod,
          }),
          paths: list('Exact "/ping", parameter "/users/:id", wildcard "/files/*".', {
            required: "[/ping]",
            unique: true,
            item: (v, path, ctx) => {
              const problem = routePathProblem(v, true);
              if (problem) ctx.issue(path, `${pathText(path)} ${problem}`);
              return problem ? undefined : v;
            },
          }),
          domains: list("Names of domain resources (application first, then project).", {
            required: "[hello]",
            unique: true,
            item: refItem("domain"),
          }),
        },
      },
      execution: {
        doc: "Limits and entry point.",
        fields: {
          timeout: duration("Wall-clock limit per request.", "10s", { min: 1, max: 5 * 60_000 }),
          memory: size("Memory limit.", "16MB", { min: 64 * 1024, max: 4096 * MiB }),
          body: size("Largest request body accepted; a larger one gets 413 unread.", "10MB", { max: 100 * MiB }),
          call: derivedText(
            "Exported symbol to call; defaults to the function name.",
            (ctx) => ctx.name,
            symbolProblem,
          ),
        },
      },
    },
    build: (v, base) => {
      return {
        kind: "function",
        ...base,
        description: v.description,
        tags: v.tags,
        trigger: { type: v.trigger.type, method: v.trigger.method, paths: v.trigger.paths, domains: v.trigger.domains },
        source: v.source,
        execution: {
          timeoutMs: v.execution.timeout,
          memoryBytes: v.execution.memory,
          bodyBytes: v.execution.body,
          call: v.execution.call,
        },
      };
    },
  },
  {
    kind: "website",
    folder: "websites",
    doc: "Static files served on domains and path prefixes.",
    shape: {
      ...common,
      domains: list("Names of domain resources.", { required: "[hello]", unique: true, item: refItem("domain") }),
      paths: list("Path prefixes served.", { def: ["/"], unique: true, item: prefixPathItem }),
      source: text('"." = code repo websites/<name>/, or a folder of the code repo.', ".", relativeFolderProblem),
      build: text(
        "Folder inside the website's code to serve (default: build/ when it exists).",
        "",
        (v) => relativeFolderProblem(v),
      ),
      spa: bool("Single-page app: unknown paths serve index.html."),
    },
    build: (v, base) => ({
      kind: "website",
      ...base,
      description: v.description,
      tags: v.tags,
      domains: v.domains,
      paths: v.paths,
      source: v.source,
      ...(v.build ? { build: v.build } : {}),
      spa: v.spa,
    }),
  },
  {
    kind: "domain",
    folder: "domains",
    doc: "A host name that functions, websites and containers are served on.",
    shape: { ...common, fqdn: requiredText("Lowercase DNS name.", "api.hello.localtau", fqdnProblem), certificate },
    build: (v, base) => ({
      kind: "domain",
      ...base,
      description: v.description,
      tags: v.tags,
      fqdn: v.fqdn,
      ...(v.certificate ? { certificate: v.certificate } : {}),
    }),
  },
  {
    kind: "library",
    folder: "libraries",
    doc: "Shared code in code repo libraries/<name>/, usable as a function's source.",
    shape: { ...common, source: text('"." = code repo libraries/<name>/.', ".", relativeFolderProblem) },
    build: (v, base) => ({ kind: "library", ...base, description: v.description, tags: v.tags, source: v.source }),
  },
  containerKind(common),
  other("database", "databases"),
  other("storage", "storages"),
  other("messaging", "messaging"),
  other("service", "services"),
];

export const KIND_BY_FOLDER = new Map(KINDS.map((k) => [k.folder, k]));
export const KIND_BY_NAME = new Map(KINDS.map((k) => [k.kind, k]));

/** config.yaml at the root and in each application folder. */
export const PROJECT_SHAPE: Shape = {
  id: text("Project id. Derived from the name when empty."),
  name: requiredText("Project name.", "hello"),
  description: text("Free text."),
  tags: list("Free-form labels.", { unique: true }),
  notification: anything("Carried for Taubyte compatibility."),
};

export const APPLICATION_SHAPE: Shape = {
  id: text("Application id. Generated when empty."),
  name: text("Optional; when present it must equal the folder name."),
  description: text("Free text."),
  tags: list("Free-form labels.", { unique: true }),
};
