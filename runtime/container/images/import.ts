/**
 * `tau image import`: OCI image layouts (a directory or a tar of one) and `docker save` archives.
 * Archives are unpacked to a scratch directory first, because their members come in no useful order.
 */
import { TauError } from "../../errors.ts";
import { ByteReader, openMaybeGzip, readTar } from "./tar.ts";
import { type ImageConfig, type ImageRecord, ImageStore, normalizeRef } from "./store.ts";

const REF_ANNOTATIONS = ["io.containerd.image.name", "org.opencontainers.image.ref.name"];
export const INDEX_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
];

/** An OCI content descriptor, as image layouts (import) and registries (pull) both write them. */
export interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface ImportOptions {
  /** ref to give the image(s) instead of the names in the archive */
  tag?: string;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readJson<T>(path: string, what: string): Promise<T> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    throw new TauError(`image archive: cannot read ${what}`, { detail: String(err) });
  }
}

/** Plain unpack of an archive's regular files and directories (names are checked, links are ignored). */
async function unpackArchive(file: string, dest: string): Promise<void> {
  const tar = readTar(new ByteReader(await openMaybeGzip(file)));
  for await (const e of tar.entries()) {
    const parts = e.name.split("/").filter((p) => p && p !== ".");
    if (parts.includes("..")) throw new TauError(`image archive has an unsafe path: ${e.name}`);
    const path = `${dest}/${parts.join("/")}`;
    if (e.type === "dir") await Deno.mkdir(path, { recursive: true });
    if (e.type !== "file" || parts.length === 0) continue;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    const f = await Deno.open(path, { write: true, create: true, truncate: true });
    try {
      for await (const c of tar.body()) await f.write(c);
    } finally {
      f.close();
    }
  }
}

export function toConfig(raw: Record<string, unknown>): { config: ImageConfig; diffIds: string[] } {
  const c = (raw.config ?? {}) as Record<string, unknown>;
  const rootfs = (raw.rootfs ?? {}) as { diff_ids?: string[] };
  if (!Array.isArray(rootfs.diff_ids)) throw new TauError("image config has no rootfs.diff_ids");
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
  return {
    config: {
      env: list(c.Env),
      cmd: list(c.Cmd),
      entrypoint: list(c.Entrypoint),
      workdir: typeof c.WorkingDir === "string" && c.WorkingDir ? c.WorkingDir : undefined,
    },
    diffIds: rootfs.diff_ids,
  };
}

async function importOne(
  store: ImageStore,
  helper: string,
  configPath: string,
  layerPaths: string[],
  refs: string[],
): Promise<ImageRecord> {
  const configBytes = await Deno.readFile(configPath);
  const { config, diffIds } = toConfig(JSON.parse(new TextDecoder().decode(configBytes)));
  if (diffIds.length !== layerPaths.length) {
    throw new TauError(`image has ${layerPaths.length} layers but its config lists ${diffIds.length}`);
  }
  let size = 0;
  for (let i = 0; i < diffIds.length; i++) {
    size += (await Deno.stat(layerPaths[i])).size;
    await store.addLayer(diffIds[i], await openMaybeGzip(layerPaths[i]), helper);
  }
  const image: ImageRecord = {
    id: `sha256:${await sha256Hex(configBytes)}`,
    refs: refs.map(normalizeRef),
    layers: diffIds,
    config,
    importedAt: new Date().toISOString(),
    size,
  };
  await store.save(image);
  return image;
}

function blobPath(dir: string, digest: string): string {
  const [alg, hex] = digest.split(":");
  if (!/^[a-z0-9]+$/.test(alg) || !/^[0-9a-f]+$/.test(hex ?? "")) throw new TauError(`bad digest in image: ${digest}`);
  return `${dir}/blobs/${alg}/${hex}`;
}

export function goArch(): string {
  return Deno.build.arch === "x86_64" ? "amd64" : "arm64";
}

async function importOciLayout(store: ImageStore, helper: string, dir: string, name: string, opts: ImportOptions) {
  const index = await readJson<{ manifests?: Descriptor[] }>(`${dir}/index.json`, "index.json");
  const out: ImageRecord[] = [];
  const visit = async (desc: Descriptor, ref?: string): Promise<void> => {
    const doc = await readJson<Record<string, unknown>>(blobPath(dir, desc.digest), `manifest ${desc.digest}`);
    const mediaType = (doc.mediaType as string) ?? desc.mediaType;
    if (INDEX_TYPES.includes(mediaType) || Array.isArray(doc.manifests)) {
      const list = (doc.manifests as Descriptor[]) ?? [];
      const pick = list.find((m) => m.platform?.os === "linux" && m.platform?.architecture === goArch()) ?? list[0];
      if (pick) await visit(pick, ref);
      return;
    }
    const config = doc.config as Descriptor | undefined;
    const layers = (doc.layers as Descriptor[] | undefined) ?? [];
    if (!config) throw new TauError(`image manifest ${desc.digest} has no config`);
    const refs = opts.tag ? [opts.tag] : ref ? [ref] : [];
    out.push(
      await importOne(store, helper, blobPath(dir, config.digest), layers.map((l) => blobPath(dir, l.digest)), refs),
    );
  };
  for (const m of index.manifests ?? []) {
    let ref: string | undefined;
    for (const a of REF_ANNOTATIONS) {
      const v = m.annotations?.[a];
      if (!v) continue;
      // A bare tag ("latest") is named after the file or directory it came from.
      ref = v.includes(":") || v.includes("/") ? v : `${name}:${v}`;
      break;
    }
    await visit(m, ref);
  }
  return out;
}

async function importDockerSave(store: ImageStore, helper: string, dir: string, opts: ImportOptions) {
  const manifest = await readJson<{ Config: string; RepoTags?: string[]; Layers: string[] }[]>(
    `${dir}/manifest.json`,
    "manifest.json",
  );
  const out: ImageRecord[] = [];
  for (const m of manifest) {
    const safe = (p: string) => {
      if (p.split("/").includes("..")) throw new TauError(`image archive has an unsafe path: ${p}`);
      return `${dir}/${p}`;
    };
    const refs = opts.tag ? [opts.tag] : m.RepoTags ?? [];
    out.push(await importOne(store, helper, safe(m.Config), m.Layers.map(safe), refs));
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Imports every image in FILE or DIR; returns what was stored. */
export async function importImage(
  store: ImageStore,
  source: string,
  helper: string,
  opts: ImportOptions = {},
): Promise<ImageRecord[]> {
  const st = await Deno.stat(source).catch(() => null);
  if (!st) throw new TauError(`${source} does not exist`, { hint: "give an OCI layout directory or an image tar" });
  const name = source.replace(/\/+$/, "").split("/").pop()!.replace(/\.(tar|tgz|tar\.gz|oci)$/, "") || "image";
  let dir = source;
  let scratch: string | undefined;
  try {
    if (!st.isDirectory) {
      await Deno.mkdir(store.dataDir, { recursive: true });
      scratch = await Deno.makeTempDir({ dir: store.dataDir, prefix: ".import-" });
      await unpackArchive(source, scratch);
      dir = scratch;
    }
    let images: ImageRecord[];
    if (await exists(`${dir}/index.json`)) images = await importOciLayout(store, helper, dir, name, opts);
    else if (await exists(`${dir}/manifest.json`)) images = await importDockerSave(store, helper, dir, opts);
    else {
      throw new TauError(`${source} is not an OCI image layout or a docker save archive`, {
        hint: "expected index.json (OCI) or manifest.json (docker save) at its top level",
      });
    }
    if (images.length === 0) throw new TauError(`${source} contains no images`);
    return images;
  } finally {
    if (scratch) await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}
