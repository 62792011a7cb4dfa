/**
 * Content-addressed image store under `<data>`: layers/<sha256 of the uncompressed tar>/ (extracted once, shared
 * by every image and container that uses them) and images/<config digest>.json (refs, layer order, run config).
 */
import { createHash } from "node:crypto";
import { TauError } from "../../errors.ts";
import { rethrowDiskFull } from "../../storage/space.ts";
import { ByteReader } from "./tar.ts";
import { extractLayer } from "./extract.ts";

export interface ImageConfig {
  env: string[];
  cmd: string[];
  entrypoint: string[];
  workdir?: string;
}

export interface ImageRecord {
  /** sha256:<hex> of the image config blob */
  id: string;
  refs: string[];
  /** diff ids, bottom layer first */
  layers: string[];
  config: ImageConfig;
  importedAt: string;
  size: number;
}

/** "busybox" -> "busybox:latest"; strips the default registry prefixes so imported and pulled names match. */
export function normalizeRef(ref: string): string {
  let r = ref.trim();
  for (const p of ["docker.io/library/", "docker.io/", "index.docker.io/library/"]) {
    if (r.startsWith(p)) r = r.slice(p.length);
  }
  if (r.includes("@")) return r;
  const lastSlash = r.lastIndexOf("/");
  if (!r.slice(lastSlash + 1).includes(":")) r += ":latest";
  return r;
}

export class ImageStore {
  constructor(readonly dataDir: string) {}

  get layersDir(): string {
    return `${this.dataDir}/layers`;
  }
  get imagesDir(): string {
    return `${this.dataDir}/images`;
  }
  layerPath(diffId: string): string {
    return `${this.layersDir}/${diffId.replace(/^sha256:/, "")}`;
  }

  async hasLayer(diffId: string): Promise<boolean> {
    try {
      await Deno.stat(`${this.layerPath(diffId)}.done`);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Extracts a layer stream unless a layer with this diff id is already stored. The content is verified: a
   * stream whose sha256 differs from `diffId` is rejected and nothing is kept.
   */
  async addLayer(diffId: string, stream: ReadableStream<Uint8Array>, helper: string): Promise<void> {
    if (!/^sha256:[0-9a-f]{64}$/.test(diffId)) throw new TauError(`unsupported layer digest: ${diffId}`);
    if (await this.hasLayer(diffId)) {
      await stream.cancel();
      return;
    }
    await Deno.mkdir(this.layersDir, { recursive: true });
    const tmp = `${this.layerPath(diffId)}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.mkdir(tmp);
    const hash = createHash("sha256");
    try {
      await extractLayer(new ByteReader(stream, (c) => hash.update(c)), tmp, helper);
      const got = `sha256:${hash.digest("hex")}`;
      if (got !== diffId) throw new TauError(`layer content does not match its digest ${diffId} (got ${got})`);
      const final = this.layerPath(diffId);
      await Deno.remove(final, { recursive: true }).catch(() => {});
      await Deno.rename(tmp, final);
      await Deno.writeTextFile(`${final}.done`, new Date().toISOString());
    } catch (err) {
      // Nothing half-extracted is kept: the images already stored stay as they were.
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      rethrowDiskFull(err, this.layersDir, `image layer ${diffId.slice(7, 19)}`, "free disk space, then import again");
    }
  }

  async save(image: ImageRecord): Promise<void> {
    await Deno.mkdir(this.imagesDir, { recursive: true });
    // A ref points at one image: moving a tag removes it from the image that had it.
    for (const other of await this.list()) {
      if (other.id === image.id) {
        image.refs = [...new Set([...other.refs, ...image.refs])];
        continue;
      }
      const kept = other.refs.filter((r) => !image.refs.includes(r));
      if (kept.length !== other.refs.length) await this.#write({ ...other, refs: kept });
    }
    await this.#write(image);
  }

  async #write(image: ImageRecord) {
    const path = `${this.imagesDir}/${image.id.replace(/^sha256:/, "")}.json`;
    await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(image, null, 2));
    await Deno.rename(`${path}.tmp`, path);
  }

  async list(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    try {
      for await (const e of Deno.readDir(this.imagesDir)) {
        if (!e.name.endsWith(".json")) continue;
        out.push(JSON.parse(await Deno.readTextFile(`${this.imagesDir}/${e.name}`)));
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return out.sort((a, b) => a.importedAt.localeCompare(b.importedAt));
  }

  /** By ref ("busybox", "busybox:1.36") or id (prefix of at least 6 hex digits, "sha256:" optional). */
  async resolve(ref: string): Promise<ImageRecord> {
    const images = await this.list();
    const want = normalizeRef(ref);
    const byRef = images.find((i) => i.refs.includes(want));
    if (byRef) return byRef;
    const hex = ref.replace(/^sha256:/, "");
    if (/^[0-9a-f]{6,64}$/.test(hex)) {
      const byId = images.filter((i) => i.id.slice(7).startsWith(hex));
      if (byId.length === 1) return byId[0];
    }
    throw new TauError(`image ${ref} not found`, {
      hint: images.length
        ? `known images: ${
          images.flatMap((i) => i.refs).join(", ") || "(untagged only)"
        }; import one with tau image import FILE`
        : "import one first: tau image import FILE|DIR (an OCI layout or a docker save archive)",
      status: 404,
    });
  }
}
