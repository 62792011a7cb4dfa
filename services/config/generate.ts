/**
 * `tau config generate`: writes one node's config (`<root>/config/<shape>.yaml`) and its keys (`<root>/keys/`).
 * Run again on the same root and shape, it keeps the node's private key (so its peer id does not change) and every
 * comment or key the operator added, and updates only the fields it was given.
 */
import { isAbsolute, join } from "node:path";
import { TauError } from "../../runtime/errors.ts";
import { decodeIdentity, newIdentity, newSwarmKey, parseSwarmKey } from "../p2p/keys.ts";
import { newDvKeyPem } from "../dv/dv.ts";
import { configFile, DEFAULT_PORTS, editShapeYaml, parseServices, shapeYamlField } from "./shape.ts";

export interface GenerateOptions {
  root: string;
  cloud: string;
  shape: string;
  ip: string;
  services?: string;
  http?: number;
  p2p?: number;
  dns?: number;
  bootstrap?: string[];
  swarmKeyFile?: string;
  newSwarmKey?: boolean;
  /** Domain validation: custom domains need a TXT record signed by the cloud's DV key (services/dv). */
  dv?: boolean;
}

export interface Generated {
  file: string;
  peerId: string;
  /** /ip4/IP/tcp/PORT/p2p/<peer id>: what other nodes pass as --bootstrap. */
  multiaddr: string;
  swarmKeyFile?: string;
  adminTokenFile: string;
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const CLOUD_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * The cloud's admin token. With a swarm key it is derived from it (HMAC-SHA256), so every node that holds the key
 * accepts the same token without it being copied around; without one it is random and kept in the file.
 */
async function adminToken(swarmKey: Uint8Array | undefined): Promise<string> {
  if (!swarmKey) return toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
  const key = await crypto.subtle.importKey(
    "raw",
    swarmKey as Uint8Array<ArrayBuffer>,
    {
      name: "HMAC",
      hash: "SHA-256",
    },
    false,
    ["sign"],
  );
  return toBase64Url(
    new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode("tau admin token v1"))),
  );
}

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function generateShapeConfig(opts: GenerateOptions): Promise<Generated> {
  const root = isAbsolute(opts.root) ? opts.root : join(Deno.cwd(), opts.root);
  if (!NAME_RE.test(opts.shape)) {
    throw new TauError(`invalid shape name '${opts.shape}'`, { hint: "use lower-case letters, digits and -" });
  }
  if (!CLOUD_RE.test(opts.cloud)) {
    throw new TauError(`invalid cloud name '${opts.cloud}'`, { hint: "use a domain name, e.g. example.com" });
  }
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(opts.ip) || opts.ip.split(".").some((o) => Number(o) > 255)) {
    throw new TauError(`--ip ${opts.ip} is not an IPv4 address`, { hint: "e.g. --ip 10.0.0.5" });
  }
  if (opts.swarmKeyFile && opts.newSwarmKey) {
    throw new TauError("--swarm-key and --new-swarm-key go one at a time", {
      hint: "the first node of a cloud takes --new-swarm-key; every other node takes --swarm-key FILE",
    });
  }
  const services = parseServices(opts.services ?? "all");
  const p2p = opts.p2p ?? DEFAULT_PORTS.p2p;
  const keysDir = join(root, "keys");
  await Deno.mkdir(join(root, "config"), { recursive: true });
  await Deno.mkdir(keysDir, { recursive: true, mode: 0o700 });

  const file = configFile(root, opts.shape);
  const existing = await readIfExists(file);
  const old = existing ? shapeYamlField(existing, "privatekey") : undefined;
  const identity = old ? decodeIdentity(old, file) : await newIdentity();

  // The swarm key: new, copied in, or (run again) whatever the node already has.
  const swarmFile = join(keysDir, "swarm.key");
  let swarmKey: Uint8Array | undefined;
  if (opts.newSwarmKey) {
    if (await readIfExists(swarmFile)) {
      throw new TauError(`${swarmFile} already exists`, {
        hint: "a cloud keeps one swarm key: pass --swarm-key with it, or remove the file to start a new cloud",
      });
    }
    const text = newSwarmKey();
    await Deno.writeTextFile(swarmFile, text, { mode: 0o600 });
    swarmKey = parseSwarmKey(text, swarmFile);
  } else if (opts.swarmKeyFile) {
    const text = await readIfExists(opts.swarmKeyFile);
    if (text === undefined) {
      throw new TauError(`swarm key ${opts.swarmKeyFile} does not exist`, {
        hint: "copy keys/swarm.key from the cloud's first node",
      });
    }
    swarmKey = parseSwarmKey(text, opts.swarmKeyFile);
    await Deno.writeTextFile(swarmFile, text, { mode: 0o600 });
  } else {
    const text = await readIfExists(swarmFile);
    if (text !== undefined) swarmKey = parseSwarmKey(text, swarmFile);
  }

  const tokenFile = join(keysDir, "admin.token");
  const token = swarmKey
    ? await adminToken(swarmKey)
    : (await readIfExists(tokenFile))?.trim() || await adminToken(undefined);
  await Deno.writeTextFile(tokenFile, token + "\n", { mode: 0o600 });

  if (opts.dv) {
    const { privatePem, publicPem } = await newDvKeyPem(swarmKey);
    await Deno.writeTextFile(join(keysDir, "dv_private.pem"), privatePem, { mode: 0o600 });
    await Deno.writeTextFile(join(keysDir, "dv_public.pem"), publicPem);
  }

  const listen = `/ip4/${opts.ip}/tcp/${p2p}`;
  const fields: Record<string, unknown> = {
    privatekey: identity.encoded,
    swarmkey: swarmKey ? "../keys/swarm.key" : undefined,
    services,
    "p2p-listen": [listen],
    "p2p-announce": [listen],
    "ports.main": p2p,
    "ports.http": opts.http ?? DEFAULT_PORTS.http,
    "ports.dns": opts.dns ?? DEFAULT_PORTS.dns,
    "network-fqdn": opts.cloud,
    "domains.generated": `g.${opts.cloud}`,
    ...(opts.dv
      ? { "domains.key.private": "../keys/dv_private.pem", "domains.key.public": "../keys/dv_public.pem" }
      : {}),
    ip: opts.ip,
    "admin-token": "../keys/admin.token",
  };
  if (opts.bootstrap?.length || !existing) fields.peers = opts.bootstrap ?? [];
  const header = ` tau node config: shape ${opts.shape} of cloud ${opts.cloud} (written by tau config generate).\n` +
    ` Paths are relative to this folder. Edit freely: generate keeps comments and fields it does not set.`;
  await Deno.writeTextFile(file, editShapeYaml(existing ?? "", fields, header), { mode: 0o600 });
  return {
    file,
    peerId: identity.peerId,
    multiaddr: `${listen}/p2p/${identity.peerId}`,
    swarmKeyFile: swarmKey ? swarmFile : undefined,
    adminTokenFile: tokenFile,
  };
}
