/**
 * Domain validation, for a cloud generated with `--dv`: a custom domain is served only after its owner proves control
 * of it with a DNS TXT record, `_tau-dv.<fqdn>  TXT  "tau-dv=<token>"`, where the token is the cloud's signature
 * (Ed25519, compact JWS) over the project and the FQDN; `tau project` prints the record to publish. Names under the
 * cloud's generated domain (`g.<cloud>`) need no record; they must contain the last 8 characters of the project's id,
 * as Taubyte requires, so one project cannot take another's generated names.
 *
 * The key: with a swarm key it is derived from it (every node of the cloud signs and verifies with the same key and
 * nothing more is copied between nodes); without one it is random. It is written as PEM in Taubyte's
 * `domains.key.private` / `domains.key.public` files.
 */
import { TauError } from "../../runtime/errors.ts";

export const TXT_PREFIX = "_tau-dv";
export const VALUE_PREFIX = "tau-dv=";

export interface DvKeys {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const fromB64url = (s: string): Uint8Array<ArrayBuffer> =>
  Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

/** PKCS#8 prefix of an Ed25519 private key: the 32-byte seed follows. */
const PKCS8_ED25519 = Uint8Array.from([
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
]);

function pem(label: string, der: Uint8Array): string {
  const b64 = btoa(String.fromCharCode(...der)).replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function unpem(text: string, label: string, where: string): Uint8Array<ArrayBuffer> {
  const m = text.match(new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`));
  if (!m) {
    throw new TauError(`${where} is not a PEM ${label.toLowerCase()}`, {
      hint: "generate it again with tau config generate --dv",
    });
  }
  return Uint8Array.from(atob(m[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}

/** A new key pair as PEM texts: from the swarm key when given (HKDF), else random. */
export async function newDvKeyPem(swarmKey?: Uint8Array): Promise<{ privatePem: string; publicPem: string }> {
  let seed: Uint8Array;
  if (swarmKey) {
    const base = await crypto.subtle.importKey("raw", swarmKey as Uint8Array<ArrayBuffer>, "HKDF", false, [
      "deriveBits",
    ]);
    seed = new Uint8Array(
      await crypto.subtle.deriveBits(
        { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode("tau dv key v1") },
        base,
        256,
      ),
    );
  } else {
    seed = crypto.getRandomValues(new Uint8Array(32));
  }
  const der = new Uint8Array(PKCS8_ED25519.length + 32);
  der.set(PKCS8_ED25519);
  der.set(seed, PKCS8_ED25519.length);
  const privateKey = await crypto.subtle.importKey("pkcs8", der, "Ed25519", true, ["sign"]);
  // The public key: export as JWK gives x; SPKI of it is the public file.
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, "Ed25519", true, [
    "verify",
  ]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", publicKey));
  return { privatePem: pem("PRIVATE KEY", der), publicPem: pem("PUBLIC KEY", spki) };
}

export async function readDvKeys(privateFile: string, publicFile: string): Promise<DvKeys> {
  const read = async (f: string) => {
    try {
      return await Deno.readTextFile(f);
    } catch {
      throw new TauError(`domain validation key ${f} cannot be read`, {
        hint: "generate it with tau config generate --dv",
      });
    }
  };
  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    unpem(await read(privateFile), "PRIVATE KEY", privateFile),
    "Ed25519",
    false,
    ["sign"],
  );
  const publicKey = await crypto.subtle.importKey(
    "spki",
    unpem(await read(publicFile), "PUBLIC KEY", publicFile),
    "Ed25519",
    false,
    ["verify"],
  );
  return { privateKey, publicKey };
}

/** The token for (project, fqdn): a compact JWS, EdDSA. */
export async function dvToken(keys: DvKeys, project: string, fqdn: string): Promise<string> {
  const enc = new TextEncoder();
  const head = b64url(enc.encode(JSON.stringify({ alg: "EdDSA", typ: "JWT" })));
  const body = b64url(enc.encode(JSON.stringify({ project, fqdn: fqdn.toLowerCase() })));
  const sig = new Uint8Array(await crypto.subtle.sign("Ed25519", keys.privateKey, enc.encode(`${head}.${body}`)));
  return `${head}.${body}.${b64url(sig)}`;
}

export async function verifyDvToken(keys: DvKeys, token: string, project: string, fqdn: string): Promise<boolean> {
  const [head, body, sig] = token.split(".");
  if (!head || !body || !sig) return false;
  try {
    const ok = await crypto.subtle.verify(
      "Ed25519",
      keys.publicKey,
      fromB64url(sig),
      new TextEncoder().encode(`${head}.${body}`),
    );
    if (!ok) return false;
    const claims = JSON.parse(new TextDecoder().decode(fromB64url(body)));
    return claims.project === project && claims.fqdn === fqdn.toLowerCase();
  } catch {
    return false;
  }
}

export interface DvRecord {
  name: string;
  type: "TXT";
  value: string;
}

export async function dvRecord(keys: DvKeys, project: string, fqdn: string): Promise<DvRecord> {
  return {
    name: `${TXT_PREFIX}.${fqdn.toLowerCase()}`,
    type: "TXT",
    value: `${VALUE_PREFIX}${await dvToken(keys, project, fqdn)}`,
  };
}

export interface DvOptions {
  keys: DvKeys;
  /** The cloud's generated domain (g.<cloud>): names under it are checked by project id, not by DNS. */
  generated: string;
  /** host:port of the resolver to ask (tests); the system's resolver otherwise. */
  resolver?: { ipAddr: string; port: number };
}

/** Throws a TauError naming the record to publish when `fqdn` may not be served by `project` (id: `projectId`). */
export async function checkDomain(opts: DvOptions, project: string, projectId: string, fqdn: string): Promise<void> {
  const name = fqdn.toLowerCase();
  const generated = opts.generated.toLowerCase();
  if (name === generated || name.endsWith(`.${generated}`)) {
    const suffix = projectId.replace(/-/g, "").toLowerCase().slice(-8);
    if (!name.slice(0, -generated.length).includes(suffix)) {
      throw new TauError(`domain ${fqdn} is under the cloud's generated domain but does not contain ${suffix}`, {
        hint: `generated names must contain the last 8 characters of the project id: e.g. ${suffix}.${generated}`,
      });
    }
    return;
  }
  const record = await dvRecord(opts.keys, project, name);
  let found: string[][] = [];
  try {
    found = await Deno.resolveDns(record.name, "TXT", opts.resolver ? { nameServer: opts.resolver } : undefined);
  } catch { /* no record (NXDOMAIN), or no answer: the same advice */ }
  for (const parts of found) {
    const value = parts.join("");
    if (
      value.startsWith(VALUE_PREFIX) && await verifyDvToken(opts.keys, value.slice(VALUE_PREFIX.length), project, name)
    ) {
      return;
    }
  }
  throw new TauError(`domain ${fqdn} is not validated for project ${project}`, {
    status: 403,
    hint: `publish the DNS record ${record.name} TXT "${record.value}" (tau project prints it), then push again`,
  });
}
