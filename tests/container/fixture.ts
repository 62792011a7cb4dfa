/**
 * Test images built from Debian's busybox-static (no registry needed): a ustar writer, a hand-written OCI image
 * layout (oci-layout, index.json, manifest, config with diff_ids, gzip layers) and a `docker save` archive.
 */
import zlib from "node:zlib";
import { concatBytes } from "../../runtime/bytes.ts";

export interface TarInput {
  name: string;
  type?: "file" | "dir" | "symlink";
  data?: Uint8Array | string;
  mode?: number;
  linkname?: string;
}

const enc = new TextEncoder();

function field(h: Uint8Array, off: number, len: number, value: string) {
  h.set(enc.encode(value).subarray(0, len), off);
}

function octal(h: Uint8Array, off: number, len: number, n: number) {
  field(h, off, len, n.toString(8).padStart(len - 1, "0") + "\0");
}

export function tar(entries: TarInput[]): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const type = e.type ?? "file";
    const data = typeof e.data === "string" ? enc.encode(e.data) : e.data ?? new Uint8Array(0);
    const h = new Uint8Array(512);
    let name = type === "dir" && !e.name.endsWith("/") ? `${e.name}/` : e.name;
    if (name.length > 100) {
      const cut = name.lastIndexOf("/", 154);
      field(h, 345, 155, name.slice(0, cut));
      name = name.slice(cut + 1);
    }
    field(h, 0, 100, name);
    octal(h, 100, 8, e.mode ?? (type === "dir" ? 0o755 : 0o644));
    octal(h, 108, 8, 0);
    octal(h, 116, 8, 0);
    octal(h, 124, 12, type === "file" ? data.length : 0);
    octal(h, 136, 12, 1700000000);
    field(h, 148, 8, "        ");
    h[156] = (type === "file" ? "0" : type === "dir" ? "5" : "2").charCodeAt(0);
    if (e.linkname) field(h, 157, 100, e.linkname);
    field(h, 257, 8, "ustar\x0000");
    const sum = h.reduce((a, b) => a + b, 0);
    field(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
    parts.push(h);
    if (type === "file") {
      parts.push(data);
      parts.push(new Uint8Array((512 - (data.length % 512)) % 512));
    }
  }
  parts.push(new Uint8Array(1024));
  return concatBytes(parts);
}

export async function gzip(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const s = new Blob([data]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

export async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return "sha256:" + Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

export const BUSYBOX = "/bin/busybox";

export async function haveBusybox(): Promise<boolean> {
  return await Deno.stat(BUSYBOX).then(() => true, () => false);
}

/** A busybox root filesystem as one layer: /bin/busybox, a symlink per applet, /etc/passwd and a web page. */
export async function busyboxLayer(): Promise<Uint8Array<ArrayBuffer>> {
  const out = await new Deno.Command(BUSYBOX, { args: ["--list"], stdout: "piped" }).output();
  const applets = new TextDecoder().decode(out.stdout).split("\n").filter((a) => a && a !== "busybox");
  return tar([
    { name: "bin", type: "dir" },
    { name: "bin/busybox", data: await Deno.readFile(BUSYBOX), mode: 0o755 },
    ...applets.map((a): TarInput => ({ name: `bin/${a}`, type: "symlink", linkname: "busybox" })),
    { name: "etc", type: "dir" },
    { name: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n" },
    { name: "etc/group", data: "root:x:0:\nnogroup:x:65534:\n" },
    { name: "root", type: "dir", mode: 0o700 },
    { name: "tmp", type: "dir", mode: 0o1777 },
    { name: "www", type: "dir" },
    { name: "www/index.html", data: "hello from busybox\n" },
  ]);
}

export interface ImageFixture {
  layers: Uint8Array<ArrayBuffer>[];
  /** how the layout's layer blobs are compressed (default gzip) */
  compression?: "gzip" | "zstd";
  cmd?: string[];
  env?: string[];
}

async function configBlob(img: ImageFixture): Promise<Uint8Array<ArrayBuffer>> {
  const diffIds = [];
  for (const l of img.layers) diffIds.push(await sha256(l));
  return enc.encode(JSON.stringify({
    architecture: Deno.build.arch === "x86_64" ? "amd64" : "arm64",
    os: "linux",
    config: { Env: img.env ?? ["PATH=/bin:/usr/bin"], Cmd: img.cmd ?? ["sh"] },
    rootfs: { type: "layers", diff_ids: diffIds },
  }));
}

/** Writes an OCI image layout directory whose index names the image `tag` (e.g. "busybox:latest"). */
export async function writeOciLayout(dir: string, img: ImageFixture, tag: string): Promise<void> {
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  const put = async (data: Uint8Array<ArrayBuffer>) => {
    const digest = await sha256(data);
    await Deno.writeFile(`${dir}/blobs/sha256/${digest.slice(7)}`, data);
    return { digest, size: data.length };
  };
  const config = await put(await configBlob(img));
  const layers = [];
  const zstd = img.compression === "zstd";
  // Deno's node:zlib has zstd; the bundled Node type declarations predate it.
  const { zstdCompressSync } = zlib as unknown as { zstdCompressSync(data: Uint8Array): Uint8Array };
  for (const l of img.layers) layers.push(await put(zstd ? new Uint8Array(zstdCompressSync(l)) : await gzip(l)));
  const manifest = await put(enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: layers.map((l) => ({
      mediaType: `application/vnd.oci.image.layer.v1.tar+${zstd ? "zstd" : "gzip"}`,
      ...l,
    })),
  })));
  await Deno.writeTextFile(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await Deno.writeTextFile(
    `${dir}/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        ...manifest,
        annotations: { "io.containerd.image.name": tag, "org.opencontainers.image.ref.name": tag.split(":")[1] },
      }],
    }),
  );
}

/** Writes a `docker save` style archive (manifest.json, config, uncompressed layer.tar per layer). */
export async function writeDockerSave(file: string, img: ImageFixture, tag: string): Promise<void> {
  const config = await configBlob(img);
  const configName = `${(await sha256(config)).slice(7)}.json`;
  const entries: TarInput[] = [{ name: configName, data: config }];
  const layerNames: string[] = [];
  for (const l of img.layers) {
    const id = (await sha256(l)).slice(7);
    entries.push({ name: id, type: "dir" }, { name: `${id}/layer.tar`, data: l });
    layerNames.push(`${id}/layer.tar`);
  }
  entries.push({
    name: "manifest.json",
    data: JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: layerNames }]),
  });
  await Deno.writeFile(file, tar(entries));
}
