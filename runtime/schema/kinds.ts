/**
 * THE schema: every resource type is declared once here (folder, fields, defaults, checks, references). Parsing,
 * validation, the route table, the docs and `tau new` scaffolding all read these declarations.
 */
import {
  anything,
  bool,
  choice,
  type Field,
  isMapping,
  list,
  pathText,
  type ReadContext,
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
} from "./checks.ts";
import type { AnyResource, DomainResource, RepoSource, ResourceKind } from "./types.ts";
import { parseAllowEntry } from "../net/outbound.ts";
import { containerKind } from "./container_kind.ts";
import { codeSource, common, executionGroup } from "./kinds/common.ts";
import { databaseKind, messagingKind, serviceKind, storageKind } from "./kinds/data.ts";
import { smartopsKind } from "./kinds/smartops.ts";
import { scheduleField, secretsField } from "./kinds/cron_secrets.ts";
export { SECRET_NAME_RE } from "./kinds/cron_secrets.ts";

const MB = 1000 * 1000;

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
  /** Rules across fields (one of two keys, required unless another is set), after every field was read. */
  check?(values: Values, ctx: ReadContext, raw: unknown): void;
  build(values: Values, base: Base, raw: unknown): AnyResource;
}

/**
 * A website's or library's `source`: a folder of the code repo ("." = its own folder), or Taubyte's repo of its own,
 * `{branch, path | paths, github: {id, fullname}}`. tau hosts a project's config and code repos, not one repo per
 * website, so a repo source is accepted, recorded, and built from the resource's folder of the code repo meanwhile
 * (a warning says so). A website's `source.paths` are its paths when `paths` is not set.
 */
function repoOrFolder(kind: "website" | "library"): Field<{ folder: string; repo?: RepoSource; paths?: string[] }> {
  const repoShape: Shape = {
    branch: text("Branch to build from."),
    path: text("Folder inside that repo."),
    paths: list("The website's paths (when `paths` is not set).", { unique: true, item: prefixPathItem }),
    github: {
      doc: "The repo on GitHub.",
      fields: {
        id: requiredText("GitHub's numeric repository id.", "123456789"),
        fullname: requiredText(
          "owner/name.",
          "acme/site",
          (v) => /^[^/\s]+\/[^/\s]+$/.test(v) ? undefined : `'${v}' must be owner/name`,
        ),
      },
    },
  };
  const folder = text("", ".", relativeFolderProblem);
  return {
    doc: `"." = code repo ${
      kind === "website" ? "websites" : "libraries"
    }/<name>/, or a folder of the code repo; or {branch, path${
      kind === "website" ? " | paths" : ""
    }, github: {id, fullname}} (Taubyte's repo of its own).`,
    defaultValue: () => ({ folder: "." }),
    defaultText: '"."',
    read(raw, path, ctx) {
      if (!isMapping(raw)) {
        const f = folder.read(raw, path, ctx);
        return f === undefined ? undefined : { folder: f };
      }
      const v = readShape(repoShape, raw, path, ctx);
      if (!v) return undefined;
      if (kind === "library" && v.paths.length) {
        ctx.issue([...path, "paths"], `${pathText(path)}.paths is for websites`);
      }
      if (!isMapping(raw.github)) {
        ctx.issue(path, `${pathText(path)} names no repo: add github: {id, fullname}`);
        return undefined;
      }
      ctx.warn(
        path,
        `${kind} ${ctx.name}'s source is the GitHub repo ${v.github.fullname}, which tau does not fetch: ` +
          `it is built from ${kind === "website" ? "websites" : "libraries"}/${ctx.name}/ of the project's code repo`,
      );
      const repo: RepoSource = {
        provider: "github",
        id: v.github.id,
        fullname: v.github.fullname,
        ...(v.branch ? { branch: v.branch } : {}),
      };
      return { folder: ".", repo, ...(v.paths.length ? { paths: v.paths } : {}) };
    },
  };
}

/** How many entries the YAML lists under a key path (a single value is one): to tell empty from all-invalid. */
function rawCount(raw: unknown, ...path: string[]): number {
  let v: unknown = raw;
  for (const key of path) v = isMapping(v) ? v[key] : undefined;
  return Array.isArray(v) ? v.length : v === undefined || v === null ? 0 : 1;
}

/** Trigger keys that belong to other trigger types than the one given: an error, not silently ignored. */
const TRIGGER_KEYS: Record<string, string[]> = {
  http: ["method", "paths", "domains"],
  https: ["method", "paths", "domains"],
  pubsub: ["channel", "local"],
  p2p: ["protocol", "service", "command", "local"],
  cron: ["schedule", "catchup"],
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

export const KINDS: KindSpec[] = [
  {
    kind: "function",
    folder: "functions",
    doc: "A WebAssembly function run by HTTP requests, pubsub messages, p2p commands or cron ticks.",
    shape: {
      ...common,
      source: codeSource,
      domains: list("Domains, as well as (or instead of) trigger.domains (Taubyte reads both).", {
        unique: true,
        item: refItem("domain"),
      }),
      trigger: {
        doc: "When the function runs.",
        fields: {
          type: choice(
            "https or http (the same locally), pubsub, p2p, or cron (tau's own).",
            ["https", "http", "pubsub", "p2p", "cron"],
            "https",
            {
              what: "a trigger type (https, http, pubsub, p2p, cron)",
            },
          ),
          method: choice("HTTP method, or ANY / * for all.", [...HTTP_METHODS, "*"], "GET", {
            what: "an HTTP method",
            normalise: normaliseMethod,
          }),
          paths: list('HTTP: exact "/ping", parameter "/users/:id", wildcard "/files/*".', {
            unique: true,
            item: (v, path, ctx) => {
              const problem = routePathProblem(v, true);
              if (problem) ctx.issue(path, `${pathText(path)} ${problem}`);
              return problem ? undefined : v;
            },
          }),
          domains: list("HTTP: names of domain resources (application first, then project).", {
            unique: true,
            item: refItem("domain"),
          }),
          channel: text("pubsub: the channel it subscribes to."),
          protocol: text("p2p: the protocol it answers on, e.g. /hello/v1."),
          service: text("p2p: a service resource of the project, whose protocol it answers on (Taubyte's way)."),
          command: text("p2p: the command it answers."),
          local: bool("pubsub and p2p: only messages and commands from this node."),
          schedule: scheduleField,
          catchup: bool("cron: after a time no node ran it, run the missed ticks (at most 100, within 1 hour)."),
        },
      },
      secrets: secretsField,
      execution: {
        doc: "Limits and entry point.",
        fields: {
          ...executionGroup("request").fields,
          body: size("Largest request body accepted; a larger one gets 413 unread.", "10MB", { max: 100 * MB }),
        },
      },
      outbound: {
        doc: "Outbound HTTP (tau's own field): public addresses are always reachable, the rest only if listed here.",
        fields: {
          allow: list(
            'Loopback, private or link-local targets the function may reach: "10.0.0.5:8080", "db.internal", "10.1.0.0/16".',
            {
              unique: true,
              item: (v, path, ctx) => {
                const parsed = parseAllowEntry(v);
                if ("error" in parsed) ctx.issue(path, `${pathText(path)}: ${parsed.error}`);
                return "error" in parsed ? undefined : v;
              },
            },
          ),
        },
      },
    },
    check(v, ctx, raw) {
      const t = v.trigger;
      const given = isMapping(raw) && isMapping(raw.trigger) ? Object.keys(raw.trigger) : [];
      for (const key of given) {
        if (key === "type" || TRIGGER_KEYS[t.type].includes(key)) continue;
        const owner = Object.entries(TRIGGER_KEYS).find(([, keys]) => keys.includes(key))?.[0];
        ctx.issue(["trigger", key], `trigger.${key} is for ${owner} triggers; this one is ${t.type}`);
      }
      // A key given with only bad entries was reported entry by entry already; "required" is for a missing key.
      const has = (key: string) => given.includes(key);
      if (t.type === "http" || t.type === "https") {
        if (!has("paths")) ctx.issue(["trigger", "paths"], "trigger.paths is required, e.g. [/ping]");
        else if (rawCount(raw, "trigger", "paths") === 0) {
          ctx.issue(["trigger", "paths"], "trigger.paths must not be empty, e.g. [/ping]");
        }
        const domainsGiven = has("domains") || (isMapping(raw) && "domains" in raw);
        if (!domainsGiven) ctx.issue(["trigger"], "trigger.domains (or domains) is required, e.g. [hello]");
        else if (rawCount(raw, "trigger", "domains") + rawCount(raw, "domains") === 0) {
          ctx.issue(["trigger"], "trigger.domains (or domains) must not be empty, e.g. [hello]");
        }
      } else if (t.type === "pubsub") {
        if (!t.channel) {
          ctx.issue(["trigger", "channel"], "trigger.channel is required for a pubsub trigger, e.g. chat");
        }
      } else if (t.type === "cron") {
        if (!has("schedule")) {
          ctx.issue(["trigger", "schedule"], "trigger.schedule is required for a cron trigger, e.g. '@every 1m'");
        }
      } else {
        if (!t.protocol && !t.service) {
          ctx.issue(["trigger"], "trigger.protocol (or service) is required for a p2p trigger, e.g. /hello/v1");
        }
        if (!t.command) ctx.issue(["trigger", "command"], "trigger.command is required for a p2p trigger, e.g. ping");
      }
    },
    build: (v, base) => {
      const t = v.trigger;
      const http = t.type === "http" || t.type === "https";
      return {
        kind: "function",
        ...base,
        description: v.description,
        tags: v.tags,
        trigger: {
          type: t.type,
          method: http ? t.method : "",
          paths: http ? t.paths : [],
          domains: http ? [...new Set([...t.domains, ...v.domains])] : [],
          ...(t.type === "pubsub" ? { channel: t.channel } : {}),
          ...(t.type === "p2p" ? { protocol: t.protocol || t.service, command: t.command } : {}),
          ...(t.type === "cron" ? { schedule: t.schedule.trim(), catchup: t.catchup } : {}),
          local: t.local,
        },
        secrets: v.secrets,
        source: v.source,
        execution: {
          timeoutMs: v.execution.timeout,
          memoryBytes: v.execution.memory,
          bodyBytes: v.execution.body,
          call: v.execution.call,
        },
        outbound: { allow: v.outbound.allow },
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
      paths: {
        ...list("Path prefixes served (else source.paths, else /).", { unique: true, item: prefixPathItem }),
        defaultText: '["/"]',
      },
      source: repoOrFolder("website"),
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
      paths: v.paths.length ? v.paths : v.source.paths ?? ["/"],
      source: v.source.folder,
      ...(v.source.repo ? { repo: v.source.repo } : {}),
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
    shape: { ...common, source: repoOrFolder("library") },
    build: (v, base) => ({
      kind: "library",
      ...base,
      description: v.description,
      tags: v.tags,
      source: v.source.folder,
      ...(v.source.repo ? { repo: v.source.repo } : {}),
    }),
  },
  containerKind(common),
  databaseKind,
  storageKind,
  messagingKind,
  serviceKind,
  smartopsKind,
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
