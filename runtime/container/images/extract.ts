/**
 * Extracts one image layer (a tar) into a directory that overlayfs can use as a lower layer: OCI whiteouts
 * (.wh.NAME, .wh..wh..opq) become overlay whiteouts (0/0 character devices) and opaque-directory xattrs, made by
 * the helper (Deno has no mknod/setxattr). Paths are confined to the destination: no '..', no writing through
 * symlinks that the layer itself planted.
 */
import { TauError } from "../../errors.ts";
import { readTar, type TarStream } from "./tar.ts";
import type { ByteReader } from "./tar.ts";

function clean(name: string): string | null {
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) return null;
  return parts.join("/");
}

export interface ExtractResult {
  files: number;
  skipped: number;
}

export async function extractLayer(reader: ByteReader, dest: string, helper: string): Promise<ExtractResult> {
  const tar: TarStream = readTar(reader);
  const safeDirs = new Set<string>([""]);
  const dirModes: [string, number, number][] = [];
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  let files = 0, skipped = 0;

  // Every parent must be a real directory we created or checked, never a symlink from the layer.
  async function ensureParent(rel: string) {
    const parts = rel.split("/");
    parts.pop();
    let cur = "";
    for (const p of parts) {
      cur = cur ? `${cur}/${p}` : p;
      if (safeDirs.has(cur)) continue;
      try {
        const st = await Deno.lstat(`${dest}/${cur}`);
        if (!st.isDirectory) throw new TauError(`image layer writes through a non-directory: ${cur}`);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
        await Deno.mkdir(`${dest}/${cur}`, { mode: 0o755 });
      }
      safeDirs.add(cur);
    }
  }
  async function removeExisting(path: string) {
    try {
      const st = await Deno.lstat(path);
      if (!st.isDirectory) await Deno.remove(path);
    } catch { /* nothing there */ }
  }

  for await (const e of tar.entries()) {
    const rel = clean(e.name);
    if (rel === null) throw new TauError(`image layer has an unsafe path: ${e.name}`);
    if (rel === "") continue;
    await ensureParent(rel);
    const base = rel.split("/").pop()!;
    const dir = rel.slice(0, rel.length - base.length);
    const path = `${dest}/${rel}`;
    if (base === ".wh..wh..opq") {
      opaque.push(`${dest}/${dir}`);
      continue;
    }
    if (base.startsWith(".wh.")) {
      whiteouts.push(`${dest}/${dir}${base.slice(4)}`);
      continue;
    }
    switch (e.type) {
      case "dir":
        safeDirs.delete(rel);
        await removeExisting(path);
        await Deno.mkdir(path, { recursive: false }).catch((err) => {
          if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
        });
        safeDirs.add(rel);
        dirModes.push([path, e.mode & 0o7777, e.mtime]);
        await Deno.chown(path, e.uid, e.gid);
        break;
      case "file": {
        await removeExisting(path);
        const f = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
        try {
          for await (const c of tar.body()) await f.write(c);
        } finally {
          f.close();
        }
        await Deno.chown(path, e.uid, e.gid);
        await Deno.chmod(path, e.mode & 0o7777);
        await Deno.utime(path, e.mtime, e.mtime);
        files++;
        break;
      }
      case "symlink":
        await removeExisting(path);
        await Deno.symlink(e.linkname, path);
        files++;
        break;
      case "hardlink": {
        const target = clean(e.linkname);
        if (target === null || target === "") throw new TauError(`image layer has an unsafe link: ${e.linkname}`);
        const st = await Deno.lstat(`${dest}/${target}`);
        if (st.isSymlink || st.isDirectory) throw new TauError(`image layer hard-links a non-file: ${e.linkname}`);
        await removeExisting(path);
        await Deno.link(`${dest}/${target}`, path);
        files++;
        break;
      }
      default:
        // Device nodes and fifos in images are rare and containers get their own /dev anyway.
        skipped++;
    }
  }
  await tar.reader.drain();
  for (const w of whiteouts) {
    await Deno.remove(w, { recursive: true }).catch(() => {});
  }
  await runHelper(helper, "whiteout", whiteouts);
  await runHelper(helper, "opaque", opaque);
  // Modes last: a read-only directory would have blocked writing its own contents.
  for (const [path, mode, mtime] of dirModes.reverse()) {
    await Deno.chmod(path, mode);
    await Deno.utime(path, mtime, mtime);
  }
  return { files, skipped };
}

async function runHelper(helper: string, mode: string, paths: string[]) {
  for (let i = 0; i < paths.length; i += 500) {
    const out = await new Deno.Command(helper, { args: [mode, ...paths.slice(i, i + 500)], stderr: "piped" }).output();
    if (!out.success) {
      throw new TauError(`cannot write overlay ${mode} markers for an image layer`, {
        detail: new TextDecoder().decode(out.stderr),
      });
    }
  }
}
