/**
 * Statefiles: the few lines of YAML that describe a container (`tau container run app.yml`). Parsing is strict
 * (unknown keys are typos) and every error names the file, the field and what a valid value looks like.
 */
import { parseDocument } from "yaml";
import { TauError } from "../errors.ts";
import { parseSize as parseSchemaSize } from "../schema/units.ts";
import type { Limits } from "./cgroups.ts";

export interface PortSpec {
  container: number;
  /** 0: pick a free port on 127.0.0.1; -1: no TCP port, only the Unix socket (containers served by the gateway) */
  host: number;
}

export interface MountSpec {
  source: string;
  target: string;
  readonly: boolean;
}

export interface ContainerSpec {
  name?: string;
  image: string;
  command?: string[];
  env: Record<string, string>;
  ports: PortSpec[];
  mounts: MountSpec[];
  limits: Limits;
  replicas: number;
  workdir?: string;
  hostname?: string;
  /** kept for project deploys (served through the gateway); unused by `tau container run` */
  domains?: string[];
  paths?: string[];
}

const KEYS = [
  "container",
  "image",
  "name",
  "port",
  "ports",
  "command",
  "env",
  "mounts",
  "limits",
  "replicas",
  "workdir",
  "hostname",
  "domains",
  "paths",
];

/** "64MB", "512k", "1GiB", 1048576 -> bytes: the project's one size syntax (decimal, KiB/MiB binary), plus a container minimum. */
export function parseSize(value: unknown, where: string): number {
  let bytes: number;
  try {
    bytes = parseSchemaSize(typeof value === "number" ? value : String(value));
  } catch {
    throw new TauError(`${where}: "${value}" is not a size`, { hint: "write a size like 64MB, 512KB or 1GB" });
  }
  if (bytes < 4_000_000) {
    throw new TauError(`${where}: ${value} is too small for a container`, { hint: "use at least 4MB" });
  }
  return bytes;
}

function fail(where: string, message: string, hint: string): never {
  throw new TauError(`${where}: ${message}`, { hint });
}

function port(value: unknown, where: string): number {
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 65535) {
    fail(where, `"${value}" is not a port`, "use a number from 1 to 65535");
  }
  return n;
}

/** `ports:` list items: 8080, "18080:8080" or {container, host}. `where` prefixes error messages. */
export function readPorts(list: unknown, where: string): PortSpec[] {
  if (!Array.isArray(list)) fail(where, "must be a list", 'example: ports: [8080, "18080:80"]');
  const out = list.map((p, i): PortSpec => {
    const at = `${where}[${i}]`;
    if (p && typeof p === "object") {
      const o = p as Record<string, unknown>;
      return { container: port(o.container, `${at}.container`), host: o.host ? port(o.host, `${at}.host`) : 0 };
    }
    const s = String(p);
    if (s.includes(":")) {
      const [h, c] = s.split(":");
      return { container: port(c, at), host: port(h, at) };
    }
    return { container: port(p, at), host: 0 };
  });
  if (out.length > 16) fail(where, "at most 16 ports", "publish fewer ports");
  return out;
}

/** A single container port (`port: 8080`). */
export function readPort(value: unknown, where: string): number {
  return port(value, where);
}

function parseMounts(value: unknown, file: string, baseDir: string): MountSpec[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(`${file}: mounts`, "must be a list", "example: - {source: ./data, target: /data}");
  return value.map((m, i) => {
    const where = `${file}: mounts[${i}]`;
    if (!m || typeof m !== "object") fail(where, "must be a mapping", "example: {source: ./data, target: /data}");
    const o = m as Record<string, unknown>;
    if (typeof o.source !== "string" || !o.source) fail(where, "`source` is missing", "the host path to mount");
    if (typeof o.target !== "string" || !o.target.startsWith("/")) {
      fail(where, "`target` must be an absolute path", "the path inside the container, like /config");
    }
    if ((o.target as string).split("/").includes("..")) {
      fail(where, "`target` must not contain '..'", "use a plain path");
    }
    const source = o.source.startsWith("/") ? o.source : `${baseDir}/${o.source}`;
    return { source, target: o.target as string, readonly: o.readonly === true || o.readOnly === true };
  });
}

/** `limits: {memory, cpus, pids}`; `where` names the field in errors ("app.yml: limits"). */
export function readLimits(value: unknown, where: string): Limits {
  if (value === undefined) return {};
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    fail(where, "must be a mapping", "{memory: 64MB, cpus: 0.5}");
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!["memory", "cpus", "pids"].includes(k)) {
      fail(`${where}.${k}`, "unknown limit", "known limits: memory, cpus, pids");
    }
  }
  const limits: Limits = {};
  if (o.memory !== undefined) limits.memoryBytes = parseSize(o.memory, `${where}.memory`);
  if (o.cpus !== undefined) {
    const c = Number(o.cpus);
    if (!Number.isFinite(c) || c <= 0 || c > 1024) {
      fail(`${where}.cpus`, `"${o.cpus}" is not a CPU count`, "e.g. 0.5 or 2");
    }
    limits.cpus = c;
  }
  if (o.pids !== undefined) {
    const p = Number(o.pids);
    if (!Number.isInteger(p) || p < 1) fail(`${where}.pids`, `"${o.pids}" is not a process count`, "e.g. 64");
    limits.pids = p;
  }
  return limits;
}

/** `env: {KEY: value}`. */
export function readEnv(value: unknown, where: string): Record<string, string> {
  const env: Record<string, string> = {};
  if (value === undefined) return env;
  if (!value || typeof value !== "object" || Array.isArray(value)) fail(where, "must be a mapping", "{KEY: value}");
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) fail(`${where}.${k}`, "is not a variable name", "use letters, digits, _");
    env[k] = String(v);
  }
  return env;
}

/** `replicas: N`, 1 to 1000. */
export function readReplicas(value: unknown, where: string): number {
  const replicas = value === undefined ? 1 : Number(value);
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 1000) {
    fail(where, `"${value}" is not a replica count`, "a whole number from 1 to 1000");
  }
  return replicas;
}

/** `command: [...]` or a string split on spaces. */
export function readCommand(value: unknown, where: string): string[] | undefined {
  return stringList(value, where, 'example: command: ["httpd", "-f", "-p", "8080"]');
}

function stringList(value: unknown, where: string, hint: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") return value.split(/\s+/).filter(Boolean);
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" && typeof v !== "number")) {
    fail(where, "must be a list of strings", hint);
  }
  return value.map(String);
}

/** Parses Statefile text. `file` names the file in errors; relative mount sources resolve against `baseDir`. */
export function parseStatefile(text: string, file = "Statefile", baseDir = Deno.cwd()): ContainerSpec {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e.linePos ? ` (line ${e.linePos[0].line})` : "";
    throw new TauError(`${file}${line}: invalid YAML: ${e.message.split("\n")[0]}`, {
      hint: "fix the YAML syntax",
    });
  }
  const raw = doc.toJS();
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    fail(file, "must be a YAML mapping", 'start with a line like: container: "busybox:latest"');
  }
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KEYS.includes(k)) fail(`${file}: ${k}`, "unknown field", `known fields: ${KEYS.join(", ")}`);
  }
  const image = o.container ?? o.image;
  if (typeof image !== "string" || !image) {
    fail(file, "`container` (the image) is missing", 'add a line like: container: "busybox:latest"');
  }
  const env = readEnv(o.env, `${file}: env`);
  const replicas = readReplicas(o.replicas, `${file}: replicas`);
  if (o.port !== undefined && o.ports !== undefined) fail(file, "both `port` and `ports` given", "keep one");
  const ports = o.ports !== undefined
    ? readPorts(o.ports, `${file}: ports`)
    : o.port !== undefined
    ? readPorts([o.port], `${file}: port`)
    : [];
  if (replicas > 1 && ports.some((p) => p.host !== 0)) {
    fail(`${file}: ports`, "a fixed host port cannot be shared by several replicas", "leave the host port out");
  }
  const name = o.name === undefined ? undefined : String(o.name);
  if (name !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(name)) {
    fail(`${file}: name`, `"${name}" is not a valid name`, "letters, digits, '.', '_' and '-'");
  }
  return {
    name,
    image,
    command: readCommand(o.command, `${file}: command`),
    env,
    ports,
    mounts: parseMounts(o.mounts, file, baseDir),
    limits: readLimits(o.limits, `${file}: limits`),
    replicas,
    workdir: o.workdir === undefined ? undefined : String(o.workdir),
    hostname: o.hostname === undefined ? undefined : String(o.hostname),
    domains: stringList(o.domains, `${file}: domains`, "a list of host names"),
    paths: stringList(o.paths, `${file}: paths`, "a list of URL paths"),
  };
}

/** Checks what parsing cannot: mount sources exist, fixed host ports are free. */
export async function checkHostResources(spec: ContainerSpec, file = "Statefile"): Promise<void> {
  for (const m of spec.mounts) {
    try {
      await Deno.stat(m.source);
    } catch {
      throw new TauError(`${file}: mount source ${m.source} does not exist`, {
        hint: `create it, or fix the source of the mount for ${m.target}`,
      });
    }
  }
  for (const p of spec.ports) {
    if (!p.host) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port: p.host }).close();
    } catch {
      throw new TauError(`${file}: port ${p.host} is already in use on 127.0.0.1`, {
        hint: "pick another host port, or leave it out to get a free one",
      });
    }
  }
}
