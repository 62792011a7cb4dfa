/**
 * `tau image pull`: fetch an image from an OCI distribution registry into the local store. An index (manifest
 * list) resolves to its linux/<this machine's arch> image; every blob is verified by digest on arrival, and each
 * layer again by its diff id when extracted, so nothing unverified reaches the store.
 */
import { TauError } from "../../errors.ts";
import { type Descriptor, goArch, INDEX_TYPES, toConfig } from "./import.ts";
import { type Credentials, dockerConfigCredentials, parsePullRef, RegistryClient } from "./registry.ts";
import { type ImageRecord, type ImageStore, normalizeRef } from "./store.ts";
import { openMaybeGzip } from "./tar.ts";

export interface PullOptions {
  /** registry URL or host when REF does not name one */
  registry?: string;
  /** ref to store the image under instead of REF */
  tag?: string;
  /** progress lines (layer downloads) */
  log?: (line: string) => void;
  /** for private registries; default: the registry's entry in Docker's config file, if any */
  credentials?: Credentials;
}

async function fetchManifest(client: RegistryClient) {
  try {
    return await client.manifest(client.ref.reference);
  } catch (err) {
    // One-word names live under library/ on registries that follow Docker Hub's convention.
    if (err instanceof TauError && err.status === 404 && !client.ref.name.includes("/")) {
      const alt = new RegistryClient({ ...client.ref, name: `library/${client.ref.name}` }, client.credentials);
      const found = await alt.manifest(client.ref.reference).catch(() => null);
      if (found) return { client: alt, ...found };
    }
    throw err;
  }
}

export async function pullImage(
  store: ImageStore,
  helper: string,
  ref: string,
  opts: PullOptions = {},
): Promise<ImageRecord> {
  const log = opts.log ?? (() => {});
  const parsed = parsePullRef(ref, opts.registry);
  const credentials = opts.credentials ?? await dockerConfigCredentials(new URL(parsed.base).host);
  const first = new RegistryClient(parsed, credentials);
  const found = await fetchManifest(first);
  const client = "client" in found ? found.client : first;
  let { mediaType, doc } = found;
  if (INDEX_TYPES.includes(mediaType) || Array.isArray(doc.manifests)) {
    const list = (doc.manifests as Descriptor[] | undefined) ?? [];
    const pick = list.find((m) => m.platform?.os === "linux" && m.platform?.architecture === goArch());
    if (!pick) {
      const have = list.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(", ") || "none";
      throw new TauError(`${ref} has no linux/${goArch()} image`, { hint: `platforms offered: ${have}` });
    }
    ({ mediaType, doc } = await client.manifest(pick.digest));
  }
  const config = doc.config as Descriptor | undefined;
  const layers = (doc.layers as Descriptor[] | undefined) ?? [];
  if (!config || !Array.isArray(doc.layers)) throw new TauError(`${ref}: unsupported manifest type ${mediaType}`);
  const configBytes = await client.blobBytes(config.digest);
  const { config: runConfig, diffIds } = toConfig(JSON.parse(new TextDecoder().decode(configBytes)));
  if (diffIds.length !== layers.length) {
    throw new TauError(`${ref}: manifest has ${layers.length} layers but the config lists ${diffIds.length}`);
  }
  await Deno.mkdir(store.dataDir, { recursive: true });
  const scratch = await Deno.makeTempDir({ dir: store.dataDir, prefix: ".import-pull-" });
  try {
    for (let i = 0; i < layers.length; i++) {
      if (await store.hasLayer(diffIds[i])) continue;
      log(`layer ${i + 1}/${layers.length} ${layers[i].digest.slice(7, 19)} (${layers[i].size ?? "?"} bytes)`);
      // Downloaded (and verified) completely before extraction, so a short read can never go unnoticed.
      const file = `${scratch}/${i}`;
      const out = await Deno.open(file, { write: true, create: true });
      await (await client.blob(layers[i].digest)).pipeTo(out.writable);
      await store.addLayer(diffIds[i], await openMaybeGzip(file), helper);
      await Deno.remove(file);
    }
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
  const shown = opts.tag ??
    (client.ref.reference.startsWith("sha256:")
      ? ref.replace(/^.*?@/, `${ref.slice(0, ref.indexOf("@"))}@`)
      : ref.includes(":") && ref.lastIndexOf(":") > ref.lastIndexOf("/")
      ? ref
      : `${ref}:${client.ref.reference}`);
  const hex = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", configBytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const image: ImageRecord = {
    id: `sha256:${hex}`,
    refs: [normalizeRef(shown)],
    layers: diffIds,
    config: runConfig,
    importedAt: new Date().toISOString(),
    size: layers.reduce((n, l) => n + (l.size ?? 0), 0),
  };
  await store.save(image);
  return image;
}
