/**
 * A node's configuration: `<root>/config/<shape>.yaml`, in Taubyte's shape-config format where Taubyte has a field
 * (privatekey, swarmkey, services, p2p-listen, p2p-announce, ports.main, peers, network-fqdn, domains), plus tau's own
 * (ip, ports.http, ports.dns, admin-token). Paths in it are relative to `<root>/config`, as Taubyte resolves them; tau
 * keeps its keys in `<root>/keys`, so they read `../keys/...`.
 *
 * Reading reports each problem with the file and line; writing goes through npm:yaml's Document, so comments and key
 * order a user added survive `tau config generate` run again.
 */
import { isAbsolute, join } from "node:path";
import { isMap, isScalar, parseDocument } from "yaml";
import { TauError } from "../../runtime/errors.ts";
import { parseYaml } from "../../runtime/schema/yaml_source.ts";
import { decodeIdentity, type NodeIdentity, parseSwarmKey } from "../p2p/keys.ts";
import { type ServiceName, SERVICES } from "./services.ts";
export { type ServiceName, SERVICES };

export interface ShapeConfig {
  root: string;
  shape: string;
  file: string;
  cloud: string;
  identity: NodeIdentity;
  services: ServiceName[];
  ip: string;
  ports: { p2p: number; http: number; dns: number };
  p2pListen: string[];
  p2pAnnounce: string[];
  bootstrap: string[];
  swarmKey?: Uint8Array;
  swarmKeyFile?: string;
  adminTokenFile?: string;
  /** The cloud's generated domain (`domains.generated`, default g.<cloud>). */
  generatedDomain: string;
  /** Domain validation (`domains.key.private/public`): custom domains need a signed TXT record (services/dv). */
  dv?: { privateKeyFile: string; publicKeyFile: string; resolver?: { ipAddr: string; port: number } };
  /** Where this node keeps its data: `<root>/storage/<shape>`. */
  dataDir: string;
}

export const DEFAULT_PORTS = { p2p: 4242, http: 80, dns: 53 };

export const configFile = (root: string, shape: string) => join(root, "config", `${shape}.yaml`);

/** "all" or a comma list of services; unknown names are an error naming them. */
export function parseServices(list: string): ServiceName[] {
  if (list.trim() === "all") return [...SERVICES];
  const names = list.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(SERVICES as readonly string[]).includes(n));
  if (unknown.length || names.length === 0) {
    throw new TauError(`unknown service${unknown.length > 1 ? "s" : ""} ${unknown.join(", ") || "(none given)"}`, {
      hint: `use all, or a comma list of ${SERVICES.join(", ")}`,
    });
  }
  return SERVICES.filter((s) => names.includes(s));
}

function portOf(value: unknown, what: string, where: string): number {
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new TauError(`${where}: ${what} ${JSON.stringify(value)} is not a port`, { hint: "use a number 1-65535" });
  }
  return n;
}

export async function readShapeConfig(root: string, shape: string): Promise<ShapeConfig> {
  if (!isAbsolute(root)) root = join(Deno.cwd(), root);
  const file = configFile(root, shape);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    throw new TauError(
      `no config for shape ${shape}: ${file} ${
        err instanceof Deno.errors.NotFound ? "does not exist" : `cannot be read (${(err as Error).message})`
      }`,
      {
        hint: `write it with: tau config generate --root ${root} --shape ${shape} --cloud NAME --ip IP`,
      },
    );
  }
  const src = parseYaml(text);
  if (src.errors.length) {
    const e = src.errors[0];
    throw new TauError(`${file}${e.line ? `:${e.line}` : ""}: ${e.message}`, { hint: "fix the YAML syntax" });
  }
  const at = (path: (string | number)[]) => {
    const line = src.lineOf(path);
    return `${file}${line ? `:${line}` : ""}`;
  };
  const v = (src.value ?? {}) as Record<string, unknown>;
  if (typeof v.privatekey !== "string" || !v.privatekey) {
    throw new TauError(`${at(["privatekey"])}: privatekey is missing`, {
      hint: "generate the node's config with tau config generate",
    });
  }
  const identity = decodeIdentity(v.privatekey, at(["privatekey"]));
  const services = Array.isArray(v.services) ? parseServicesAt(v.services, at(["services"])) : [...SERVICES];
  const ports = (isObject(v.ports) ? v.ports : {}) as Record<string, unknown>;
  const p2p = portOf(ports.main ?? DEFAULT_PORTS.p2p, "ports.main", at(["ports", "main"]));
  const http = portOf(ports.http ?? DEFAULT_PORTS.http, "ports.http", at(["ports", "http"]));
  const dns = portOf(ports.dns ?? DEFAULT_PORTS.dns, "ports.dns", at(["ports", "dns"]));
  if (typeof v.ip !== "string" || !/^\d{1,3}(\.\d{1,3}){3}$/.test(v.ip)) {
    throw new TauError(`${at(["ip"])}: ip ${JSON.stringify(v.ip)} is not an IPv4 address`, {
      hint: "set ip: to the address this node listens on and other nodes reach it at",
    });
  }
  const strings = (value: unknown, key: string): string[] => {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value) || value.some((s) => typeof s !== "string")) {
      throw new TauError(`${at([key])}: ${key} must be a list of multiaddrs`);
    }
    return value as string[];
  };
  const configDir = join(root, "config");
  let swarmKey: Uint8Array | undefined;
  let swarmKeyFile: string | undefined;
  if (typeof v.swarmkey === "string" && v.swarmkey) {
    swarmKeyFile = join(configDir, v.swarmkey);
    let keyText: string;
    try {
      keyText = await Deno.readTextFile(swarmKeyFile);
    } catch {
      throw new TauError(`${at(["swarmkey"])}: swarm key ${swarmKeyFile} cannot be read`, {
        hint: "copy the cloud's swarm.key there, or remove the swarmkey line for an open network",
      });
    }
    swarmKey = parseSwarmKey(keyText, swarmKeyFile);
  }
  const adminToken = typeof v["admin-token"] === "string" ? join(configDir, v["admin-token"] as string) : undefined;
  const listen = strings(v["p2p-listen"], "p2p-listen");
  const domains = (isObject(v.domains) ? v.domains : {}) as Record<string, unknown>;
  const dvKey = (isObject(domains.key) ? domains.key : {}) as Record<string, unknown>;
  let dv: ShapeConfig["dv"];
  if (typeof dvKey.private === "string" && typeof dvKey.public === "string") {
    // tau's own field: the resolver DV asks (tests point it at their DNS server); the system's resolver otherwise.
    const resolver = typeof domains["dv-resolver"] === "string" ? domains["dv-resolver"] as string : undefined;
    const m = resolver?.match(/^(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/);
    if (resolver && !m) {
      throw new TauError(`${at(["domains", "dv-resolver"])}: dv-resolver ${resolver} is not IP:PORT`);
    }
    dv = {
      privateKeyFile: join(configDir, dvKey.private),
      publicKeyFile: join(configDir, dvKey.public),
      resolver: m ? { ipAddr: m[1], port: Number(m[2]) } : undefined,
    };
  }
  const cloud = typeof v["network-fqdn"] === "string" ? v["network-fqdn"] as string : "tau.local";
  return {
    root,
    shape,
    file,
    cloud,
    generatedDomain: typeof domains.generated === "string" ? domains.generated : `g.${cloud}`,
    dv,
    identity,
    services,
    ip: v.ip,
    ports: { p2p, http, dns },
    p2pListen: listen.length ? listen : [`/ip4/${v.ip}/tcp/${p2p}`],
    p2pAnnounce: strings(v["p2p-announce"], "p2p-announce"),
    bootstrap: strings(v.peers, "peers"),
    swarmKey,
    swarmKeyFile,
    adminTokenFile: adminToken,
    dataDir: join(root, "storage", shape),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseServicesAt(list: unknown[], where: string): ServiceName[] {
  try {
    return parseServices(list.map(String).join(","));
  } catch (err) {
    throw new TauError(`${where}: ${(err as TauError).message}`, { hint: (err as TauError).hint });
  }
}

/** One top-level string field of a config file's text (undefined when absent or not a string). */
export function shapeYamlField(text: string, key: string): string | undefined {
  const value = parseDocument(text).get(key);
  return typeof value === "string" ? value : undefined;
}

/**
 * Sets fields in a config file's text, keeping everything else (comments, order, unknown keys). `fields` maps a
 * top-level key (or "ports.main"-style path) to its new value; undefined removes the key.
 */
export function editShapeYaml(text: string, fields: Record<string, unknown>, header?: string): string {
  // An empty file parses to no contents; a new map node makes it a block-style document like any other.
  const doc = parseDocument(text.trim() ? text : "x: 0\n");
  if (!text.trim()) doc.delete("x");
  if (!isMap(doc.contents)) throw new TauError("the node config is not a YAML map");
  for (const [key, value] of Object.entries(fields)) {
    const path = key.split(".");
    if (value === undefined) doc.deleteIn(path);
    else {
      const node = doc.getIn(path, true);
      if (isScalar(node) && !isObject(value) && !Array.isArray(value)) node.value = value;
      else doc.setIn(path, doc.createNode(value));
    }
  }
  if (header && !doc.commentBefore) doc.commentBefore = header;
  return doc.toString({ lineWidth: 0 });
}
