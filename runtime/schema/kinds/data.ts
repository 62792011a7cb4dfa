/**
 * Taubyte's data and messaging kinds, validated field by field as Taubyte's v1 compiler reads them: databases,
 * storages, messaging channels and p2p services. tau keeps them in the deployment record; running databases and
 * storages behind the `taubyte/sdk` calls, and messaging and services as triggers, build on these values.
 */
import { regexProblem } from "../checks.ts";
import { bool, choice, duration, type Path, pathText, type ReadContext, requiredText, size, text } from "../fields.ts";
import type { Values } from "../fields.ts";
import type { KindSpec } from "../kinds.ts";
import type { DatabaseResource, MessagingResource, ServiceResource, StorageResource } from "../types.ts";
import { common } from "./common.ts";

const access = {
  doc: "Who may reach it.",
  fields: {
    network: choice("all, subnet (the project's peers) or host (this node only).", ["all", "subnet", "host"], "all"),
  },
};

/** What databases and storages share in their records: identity text, what they match, who may reach them. */
function matched(v: Values) {
  return {
    description: v.description,
    tags: v.tags,
    match: v.match,
    regex: v.useRegex,
    network: v.access.network as "all" | "subnet" | "host",
  };
}

/** `match` is a name, or a regular expression with useRegex: a regex that does not compile is an error here. */
function checkMatch(v: Values, ctx: ReadContext, at: Path, regex: boolean, required: boolean): void {
  if (!v.match && required) ctx.issue(at, `${pathText(at)} is required (the names it serves), e.g. users`);
  if (v.match && regex) {
    const problem = regexProblem(v.match);
    if (problem) ctx.issue(at, `${pathText(at)} ${problem}`);
  }
}

export const databaseKind: KindSpec = {
  kind: "database",
  folder: "databases",
  doc: "A key-value database per name it matches, scoped to the project or its application.",
  shape: {
    ...common,
    match: text("The database name it serves (a regular expression with useRegex)."),
    useRegex: bool("match is a regular expression."),
    access,
    storage: { doc: "Capacity.", fields: { size: size("Largest total size of its keys and values.") } },
    encryption: {
      doc: "Encryption at rest (carried; tau encrypts nothing yet).",
      fields: { type: text("Scheme."), key: text("Key or its reference.") },
    },
  },
  check(v, ctx) {
    // Taubyte: match is required unless useRegex is set.
    checkMatch(v, ctx, ["match"], v.useRegex, !v.useRegex);
    if (!v.storage.size) ctx.issue(["storage", "size"], "storage.size is required, e.g. 1GB");
  },
  build: (v, base): DatabaseResource => ({ kind: "database", ...base, ...matched(v), sizeBytes: v.storage.size ?? 0 }),
};

export const storageKind: KindSpec = {
  kind: "storage",
  folder: "storages",
  doc: "Object storage (files with versions) or streaming storage (entries that expire), per name it matches.",
  shape: {
    ...common,
    match: text("The storage name it serves (a regular expression with useRegex)."),
    useRegex: bool("match is a regular expression."),
    access,
    object: {
      doc: "An object storage: files, optionally versioned (this or streaming).",
      fields: { versioning: bool("Keep every version of a file."), size: size("Capacity.") },
    },
    streaming: {
      doc: "A streaming storage: entries expire after ttl (this or object).",
      fields: { ttl: duration("How long an entry lives."), size: size("Capacity.") },
    },
  },
  check(v, ctx, raw) {
    checkMatch(v, ctx, ["match"], v.useRegex, false);
    const has = (k: string) => raw !== null && typeof raw === "object" && k in (raw as Record<string, unknown>);
    if (has("object") === has("streaming")) {
      ctx.issue(
        has("object") ? ["streaming"] : [],
        "a storage is either object: {...} or streaming: {...}, one of them",
      );
      return;
    }
    const type = has("object") ? "object" : "streaming";
    if (!v[type].size) ctx.issue([type, "size"], `${type}.size is required, e.g. 1GB`);
    if (type === "streaming" && !v.streaming.ttl) ctx.issue(["streaming", "ttl"], "streaming.ttl is required, e.g. 1h");
  },
  build: (v, base, raw): StorageResource => {
    const object = raw !== null && typeof raw === "object" && "object" in (raw as Record<string, unknown>);
    return {
      kind: "storage",
      ...base,
      ...matched(v),
      ...(object
        ? { type: "object", versioning: v.object.versioning, sizeBytes: v.object.size ?? 0 }
        : { type: "streaming", ttlMs: v.streaming.ttl, sizeBytes: v.streaming.size ?? 0 }),
    };
  },
};

export const messagingKind: KindSpec = {
  kind: "messaging",
  folder: "messaging",
  doc: "A pubsub channel (by name or regular expression), optionally bridged to WebSocket or MQTT.",
  shape: {
    ...common,
    local: bool("Messages stay on the node they were published on."),
    channel: {
      doc: "The channels it covers.",
      fields: { match: text("Channel name (a regular expression with regex)."), regex: bool("match is a regex.") },
    },
    bridges: {
      doc: "Ways in from outside the cloud.",
      fields: {
        websocket: { doc: "Browsers publish and subscribe over WebSocket.", fields: { enable: bool("On.") } },
        mqtt: { doc: "MQTT clients publish and subscribe.", fields: { enable: bool("On.") } },
      },
    },
  },
  check(v, ctx) {
    checkMatch(v.channel, ctx, ["channel", "match"], v.channel.regex, true);
  },
  build: (v, base): MessagingResource => ({
    kind: "messaging",
    ...base,
    description: v.description,
    tags: v.tags,
    local: v.local,
    match: v.channel.match,
    regex: v.channel.regex,
    websocket: v.bridges.websocket.enable,
    mqtt: v.bridges.mqtt.enable,
  }),
};

export const serviceKind: KindSpec = {
  kind: "service",
  folder: "services",
  doc: "A libp2p protocol the project's p2p functions answer on.",
  shape: {
    ...common,
    protocol: requiredText(
      "The protocol id, starting with /.",
      "/hello/v1",
      (p) =>
        p.startsWith("/") && !/\s/.test(p)
          ? undefined
          : `'${p}' must start with "/" and have no spaces, e.g. /hello/v1`,
    ),
  },
  build: (v, base): ServiceResource => ({
    kind: "service",
    ...base,
    description: v.description,
    tags: v.tags,
    protocol: v.protocol,
  }),
};
