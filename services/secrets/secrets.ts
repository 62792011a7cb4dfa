/**
 * Project secrets: named values a project's functions read at run time (only those whose config lists them), kept
 * out of git, build logs and records. Each value is encrypted (AES-256-GCM, Web Crypto) before it is written to the
 * replicated control state under ["secrets", project, NAME], so every node holds every secret, and only as
 * ciphertext: the Deno KV files on disk never contain a value. The GCM additional data binds a ciphertext to its
 * project and name (a value copied to another key does not decrypt).
 *
 * The key: on a cloud, derived (HKDF-SHA-256) from the cloud's swarm key, which every node of the cloud has and
 * nothing outside it does, so any node can decrypt what another set. On `tau dev` (no swarm key), a random key in
 * the data dir (secrets.key, mode 0600), made on first start.
 */
import { join } from "node:path";
import { TauError } from "../../runtime/errors.ts";
import { SECRET_NAME_RE } from "../../runtime/schema/kinds.ts";
import type { StateStore } from "../kvdb/mod.ts";

/** A value's size at most. The replicated store keeps values up to 60 KiB; a secret is a token, a key, a password. */
export const MAX_SECRET_BYTES = 32 * 1024;
export const SECRETS_KEY_FILE = "secrets.key";

/** What the store keeps per secret: never the value itself. */
interface Sealed {
  iv: Uint8Array;
  data: Uint8Array;
  setAt: string;
}

export interface SecretInfo {
  name: string;
  setAt: string;
}

const HKDF_SALT = new TextEncoder().encode("tau project secrets");
const HKDF_INFO = new TextEncoder().encode("aes-256-gcm v1");

/** The node's secrets key: from the swarm key on a cloud, else the data dir's key file (made once, mode 0600). */
export async function secretsKey(opts: { dataDir: string; swarmKey?: Uint8Array }): Promise<CryptoKey> {
  if (opts.swarmKey) {
    const base = await crypto.subtle.importKey("raw", opts.swarmKey as Uint8Array<ArrayBuffer>, "HKDF", false, [
      "deriveKey",
    ]);
    return await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: HKDF_SALT, info: HKDF_INFO },
      base,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
  }
  const file = join(opts.dataDir, SECRETS_KEY_FILE);
  let raw: Uint8Array;
  try {
    raw = await Deno.readFile(file);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    raw = crypto.getRandomValues(new Uint8Array(32));
    // createNew: two processes starting on one data dir never overwrite each other's key.
    await Deno.writeFile(file, raw, { mode: 0o600, createNew: true }).catch(async (e) => {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      raw = await Deno.readFile(file);
    });
  }
  if (raw.length !== 32) {
    throw new TauError(`secrets key ${file} is ${raw.length} bytes, not 32`, {
      hint: "restore the file from a backup (secrets set with it cannot be read without it)",
    });
  }
  return await crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

export function checkSecretName(name: string): void {
  if (!SECRET_NAME_RE.test(name)) {
    throw new TauError(`'${name}' is not a secret name`, {
      status: 400,
      hint: "use upper case letters, digits and _, starting with a letter or _ (e.g. API_KEY)",
    });
  }
}

function aad(project: string, name: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`tau-secret\0${project}\0${name}`);
}

/** Values (decrypted, or known unset) kept at most, and for how long. */
const CACHE_MAX = 1000;
const CACHE_MS = 5_000;

export class Secrets {
  /**
   * What a function read lately, per project and name: a state read plus Web Crypto's decrypt cost ~0.2-0.26 ms a
   * call (measured here; ~0.12 ms of it the read), paid on every call of a function that reads a secret without it.
   * A change on this node's replica (a set or rm, here or replicated from another node) drops the entry at once; a
   * node without a replica (RemoteStore) hears only its own writes, so there a change shows within CACHE_MS.
   */
  readonly #cache = new Map<string, { value: Uint8Array | undefined; at: number }>();
  /** Moves at every change: a read that started before one does not keep what it read. */
  #generation = 0;

  /** Said once, at the first secret set through this node (not at every start of a node that may never hold one). */
  #firstSet?: () => void;

  constructor(
    private readonly state: StateStore,
    private readonly key: CryptoKey,
    opts: { onFirstSet?: () => void } = {},
  ) {
    this.#firstSet = opts.onFirstSet;
    state.onChange((entries) => {
      for (const e of entries) if (e.key[0] === "secrets") this.#forget(e.key[1], e.key[2]);
    });
  }

  #forget(project: string, name: string): void {
    this.#generation++;
    this.#cache.delete(`${project}\0${name}`);
  }

  async set(project: string, name: string, value: Uint8Array): Promise<SecretInfo> {
    checkSecretName(name);
    this.#firstSet?.();
    this.#firstSet = undefined;
    if (value.length === 0) {
      throw new TauError(`secret ${name} is empty`, {
        status: 400,
        hint: `pipe the value in: printf %s "$VALUE" | tau secret set ${project} ${name}`,
      });
    }
    if (value.length > MAX_SECRET_BYTES) {
      throw new TauError(`secret ${name} is ${value.length} bytes; a secret holds at most ${MAX_SECRET_BYTES}`, {
        status: 413,
        hint: "keep large data in a storage, and its credentials in the secret",
      });
    }
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: aad(project, name) },
        this.key,
        value as Uint8Array<ArrayBuffer>,
      ),
    );
    const sealed: Sealed = { iv, data, setAt: new Date().toISOString() };
    await this.state.set(["secrets", project, name], sealed);
    this.#forget(project, name);
    return { name, setAt: sealed.setAt };
  }

  async list(project: string): Promise<SecretInfo[]> {
    const rows = await this.state.list<Sealed>(["secrets", project]);
    return rows.map((r) => ({ name: r.key[2], setAt: r.value.setAt })).sort((a, b) => a.name < b.name ? -1 : 1);
  }

  async remove(project: string, name: string): Promise<void> {
    checkSecretName(name);
    if (await this.state.get(["secrets", project, name]) === undefined) throw notSet(project, name, 404);
    await this.state.delete(["secrets", project, name]);
    this.#forget(project, name);
  }

  /** The value, or undefined when it is not set. */
  async get(project: string, name: string): Promise<Uint8Array | undefined> {
    const id = `${project}\0${name}`;
    const kept = this.#cache.get(id);
    if (kept && Date.now() - kept.at < CACHE_MS) return kept.value;
    const [at, generation] = [Date.now(), this.#generation];
    const value = await this.#read(project, name);
    if (generation !== this.#generation) return value;
    if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(id, { value, at });
    return value;
  }

  async #read(project: string, name: string): Promise<Uint8Array | undefined> {
    const sealed = await this.state.get<Sealed>(["secrets", project, name]);
    if (!sealed) return undefined;
    try {
      return new Uint8Array(
        await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: sealed.iv as Uint8Array<ArrayBuffer>, additionalData: aad(project, name) },
          this.key,
          sealed.data as Uint8Array<ArrayBuffer>,
        ),
      );
    } catch {
      throw new TauError(`secret ${name} of project ${project} cannot be decrypted on this node`, {
        hint: `it was set with another key (another cloud's swarm key?): run tau secret set ${project} ${name} again`,
      });
    }
  }
}

export function notSet(project: string, name: string, status = 404): TauError {
  return new TauError(`secret ${name} is not set for project ${project}`, {
    status,
    hint: `run tau secret set ${project} ${name} (tau secret ls ${project} lists the ones that are)`,
  });
}

/** The line a function's log gets for a secret its config lists but nobody set. */
export function notSetLine(project: string, name: string): string {
  return `secret ${name} is not set for project ${project}: run tau secret set ${project} ${name}`;
}
