/**
 * A client for the OCI distribution API (pull only): manifests, blobs, and the two ways registries ask for
 * credentials: the bearer-token flow (401 + `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, then a
 * token from the realm, anonymous or with the user's name and password, then the request again) and plain Basic
 * auth (`WWW-Authenticate: Basic`, private registries). Everything fetched is checked against its sha256 digest
 * before it is trusted.
 */
import { createHash } from "node:crypto";
import { TauError } from "../../errors.ts";

export const MANIFEST_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
];

export interface Credentials {
  username: string;
  password: string;
}

export interface RegistryRef {
  /** base URL, e.g. http://127.0.0.1:5000 */
  base: string;
  /** repository path, e.g. library/busybox */
  name: string;
  /** tag or sha256 digest */
  reference: string;
}

/** Loopback registries speak plain HTTP (as test and local registries do); every other host gets HTTPS. */
function baseUrl(host: string): string {
  const bare = host.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  const local = bare === "localhost" || bare === "::1" || /^127\.\d+\.\d+\.\d+$/.test(bare);
  return `${local ? "http" : "https"}://${host}`;
}

/** The registry host a reference names (`127.0.0.1:5000/app:1`, `ghcr.io/x/y`), or undefined for `busybox:1`. */
export function registryHostOf(ref: string): string | undefined {
  const first = ref.split("/")[0];
  const isHost = ref.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  return isHost ? first : undefined;
}

/**
 * `host[:port]/name[:tag|@digest]`, or `name[:tag]` with `registry` (a URL or host). There is deliberately no
 * built-in default registry: the user names the one to use.
 */
export function parsePullRef(ref: string, registry?: string): RegistryRef {
  let rest = ref.trim();
  let base: string | undefined;
  const host = registryHostOf(rest);
  if (host) {
    base = baseUrl(host);
    rest = rest.slice(host.length + 1);
  }
  if (registry) base = /^https?:\/\//.test(registry) ? registry.replace(/\/+$/, "") : baseUrl(registry);
  if (!base) {
    throw new TauError(`no registry for ${ref}`, {
      hint: "name it: tau image pull --registry URL NAME[:TAG], or HOST[:PORT]/NAME[:TAG]",
    });
  }
  let reference = "latest";
  const at = rest.indexOf("@");
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon > rest.lastIndexOf("/")) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
  }
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(rest)) {
    throw new TauError(`invalid image name ${JSON.stringify(rest)} in ${ref}`, {
      hint: "names are lowercase letters, digits and . _ - separated by /",
    });
  }
  if (reference.includes(":") ? !/^sha256:[0-9a-f]{64}$/.test(reference) : !/^[\w][\w.-]{0,127}$/.test(reference)) {
    throw new TauError(`invalid tag or digest ${JSON.stringify(reference)} in ${ref}`);
  }
  return { base, name: rest, reference };
}

/** `Bearer realm="https://x/token",service="x",scope="repository:a:pull"` -> {realm, service, scope}. */
export function parseChallenge(header: string): Record<string, string> | null {
  const m = header.match(/^\s*Bearer\s+(.*)$/i);
  if (!m) return null;
  const out: Record<string, string> = {};
  for (const part of m[1].matchAll(/([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    out[part[1].toLowerCase()] = part[2] ?? part[3];
  }
  return out.realm ? out : null;
}

const CREDENTIALS_HINT =
  "pass --user NAME (with --password-stdin), or log in with docker login: tau reads ~/.docker/config.json";

function basicHeader(c: Credentials): string {
  return `Basic ${btoa(`${c.username}:${c.password}`)}`;
}

export class RegistryClient {
  #authorization: string | undefined;
  constructor(readonly ref: RegistryRef, readonly credentials?: Credentials) {}

  /** GET with the registry's auth flow: on a 401, get a token (or use Basic credentials) once, then retry. */
  async get(path: string, accept?: string[]): Promise<Response> {
    const url = `${this.ref.base}/v2/${this.ref.name}/${path}`;
    const headers = (): HeadersInit => ({
      ...(accept ? { accept: accept.join(", ") } : {}),
      ...(this.#authorization ? { authorization: this.#authorization } : {}),
    });
    let res = await this.#fetch(url, headers());
    if (res.status === 401 && !this.#authorization) {
      await res.body?.cancel();
      const header = res.headers.get("www-authenticate") ?? "";
      const challenge = parseChallenge(header);
      if (challenge) {
        this.#authorization = `Bearer ${await this.#fetchToken(challenge)}`;
      } else if (/^\s*Basic\b/i.test(header) && this.credentials) {
        this.#authorization = basicHeader(this.credentials);
      } else {
        throw new TauError(`registry ${this.ref.base} wants a user name and password for ${this.ref.name}`, {
          hint: CREDENTIALS_HINT,
          status: 401,
        });
      }
      res = await this.#fetch(url, headers());
    }
    if (res.ok) return res;
    await res.body?.cancel();
    const what = `${this.ref.name}:${this.ref.reference}`;
    if (res.status === 404) throw new TauError(`${what} not found in ${this.ref.base}`, { status: 404 });
    if (res.status === 401 || res.status === 403) {
      if (this.credentials) {
        throw new TauError(
          `registry ${this.ref.base} refused user ${this.credentials.username} access to ${what} (${res.status})`,
          { hint: "check the user name, the password and that the user may pull this image", status: res.status },
        );
      }
      throw new TauError(`registry ${this.ref.base} refused access to ${what} (${res.status})`, {
        hint: `the image may be private: ${CREDENTIALS_HINT}`,
        status: res.status,
      });
    }
    throw new TauError(`registry ${this.ref.base} answered ${res.status} for ${path}`);
  }

  async #fetch(url: string, headers: HeadersInit): Promise<Response> {
    try {
      return await fetch(url, { headers });
    } catch (err) {
      throw new TauError(`cannot reach registry ${this.ref.base}`, { detail: String(err) });
    }
  }

  async #fetchToken(c: Record<string, string>): Promise<string> {
    const url = new URL(c.realm);
    if (c.service) url.searchParams.set("service", c.service);
    url.searchParams.set("scope", c.scope ?? `repository:${this.ref.name}:pull`);
    let res: Response;
    try {
      // Anonymous unless the user gave credentials: private images get their token for the user's name.
      res = await fetch(url, this.credentials ? { headers: { authorization: basicHeader(this.credentials) } } : {});
    } catch (err) {
      throw new TauError(`cannot reach the registry's token service ${url.origin}`, { detail: String(err) });
    }
    if (!res.ok) {
      await res.body?.cancel();
      const who = this.credentials ? `user ${this.credentials.username}` : "an anonymous pull";
      throw new TauError(`the registry's token service refused a pull token for ${who} (${res.status})`, {
        hint: this.credentials ? "check the user name and the password" : CREDENTIALS_HINT,
        status: res.status,
      });
    }
    const body = await res.json().catch(() => ({})) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new TauError("the registry's token service sent no token");
    return token;
  }

  /** A manifest or index, checked against `digest` when one is known. */
  async manifest(reference: string): Promise<{ mediaType: string; doc: Record<string, unknown>; digest: string }> {
    const res = await this.get(`manifests/${reference}`, MANIFEST_TYPES);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const expected = reference.startsWith("sha256:") ? reference : res.headers.get("docker-content-digest");
    if (expected && expected.startsWith("sha256:") && expected !== digest) {
      throw new TauError(`manifest ${reference} does not match its digest ${expected} (got ${digest})`);
    }
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new TauError(`registry sent a manifest that is not JSON for ${reference}`);
    }
    const mediaType = (doc.mediaType as string) ?? res.headers.get("content-type")?.split(";")[0] ?? "";
    return { mediaType, doc, digest };
  }

  /** A blob's bytes as a stream that errors at its end if their sha256 is not `digest`. */
  async blob(digest: string): Promise<ReadableStream<Uint8Array>> {
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new TauError(`unsupported blob digest ${digest}`);
    const res = await this.get(`blobs/${digest}`);
    const hash = createHash("sha256");
    return res.body!.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          hash.update(chunk);
          ctl.enqueue(chunk);
        },
        flush(ctl) {
          const got = `sha256:${hash.digest("hex")}`;
          if (got !== digest) ctl.error(new TauError(`blob ${digest} does not match its digest (got ${got})`));
        },
      }),
    );
  }

  async blobBytes(digest: string): Promise<Uint8Array<ArrayBuffer>> {
    return new Uint8Array(await new Response(await this.blob(digest)).arrayBuffer());
  }
}

/**
 * Credentials for `host` from Docker's config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json), where
 * `docker login` keeps them (`auths.<host>.auth` = base64 of "user:password"). Credential helpers are not run.
 */
export async function dockerConfigCredentials(host: string): Promise<Credentials | undefined> {
  const dir = Deno.env.get("DOCKER_CONFIG") ?? (Deno.env.get("HOME") ? `${Deno.env.get("HOME")}/.docker` : undefined);
  if (!dir) return undefined;
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  } catch {
    return undefined;
  }
  const entry = Object.entries(config.auths ?? {}).find(([key]) =>
    key.replace(/^https?:\/\//, "").replace(/\/.*$/, "") === host
  )?.[1];
  if (!entry) return undefined;
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  if (!entry.auth) return undefined;
  const decoded = atob(entry.auth);
  const colon = decoded.indexOf(":");
  return colon > 0 ? { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) } : undefined;
}
