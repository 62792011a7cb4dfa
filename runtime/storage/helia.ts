/**
 * The node's content-addressed store: a lean Helia with file-backed blocks under the data dir.
 * createHeliaLight has no libp2p, no routers and no block brokers, so nothing here ever contacts the public IPFS
 * network. A node of a multi-node cloud hands in its own libp2p node: bitswap then fetches a missing block from the
 * cloud's peers (inside the private swarm), bounded by FETCH_TIMEOUT_MS, instead of answering "not here".
 */
import { concatBytes } from "../bytes.ts";
import { createHeliaLight, type Helia } from "helia";
import type { Libp2p } from "@libp2p/interface";
import { type UnixFS, unixfs } from "@helia/unixfs";
import { FsBlockstore } from "blockstore-fs";
import { FsDatastore } from "datastore-fs";
import { CID } from "multiformats/cid";
import { join } from "node:path";
import { TauError } from "../errors.ts";
import { ensureSpace, rethrowDiskFull } from "./space.ts";

export interface ContentStore {
  helia: Helia;
  fs: UnixFS;
  /** Add one file's bytes; returns its CID (a UnixFS file, chunked for large inputs). */
  addBytes(bytes: Uint8Array): Promise<string>;
  /** Add a directory tree given as relative path -> bytes; returns the root directory CID. */
  addTree(files: Record<string, Uint8Array>): Promise<string>;
  /** The whole content of a UnixFS file; throws TauError (404) if absent. */
  cat(cid: string, range?: { offset: number; length: number }): Promise<Uint8Array<ArrayBuffer>>;
  /** Resolve `path` inside a directory CID to a file entry. Returns undefined when absent. */
  resolveFile(root: string, path: string): Promise<{ cid: string; size: number } | undefined>;
  has(cid: string): Promise<boolean>;
  close(): Promise<void>;
}

/** How long a read waits for peers to send a block this node lacks. */
export const FETCH_TIMEOUT_MS = 15_000;

export async function openContentStore(dataDir: string, opts: { libp2p?: Libp2p } = {}): Promise<ContentStore> {
  const blockstore = new FsBlockstore(join(dataDir, "blocks"));
  const datastore = new FsDatastore(join(dataDir, "datastore"));
  const helia = createHeliaLight({ blockstore, datastore });
  if (opts.libp2p) {
    // Bitswap reads `libp2p` off the node it is given; the light Helia has none of its own, so it gets ours.
    Object.defineProperty(helia, "libp2p", { value: opts.libp2p, enumerable: true });
    // Loaded only here: `tau dev` has no peers and starts without it.
    const { withBitswap } = await import("@helia/bitswap");
    withBitswap(helia as Parameters<typeof withBitswap>[0]);
  }
  await helia.start();
  const networked = opts.libp2p !== undefined;
  const bounded = () => networked ? { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) } : {};
  const fs = unixfs(helia);

  // Listings and stats are immutable per CID, so both are cached (bounded); a miss costs block reads.
  const dirCache = new Map<string, Map<string, string>>();
  const statCache = new Map<string, { dir: boolean; size: number }>();
  const remember = <V>(cache: Map<string, V>, key: string, value: V) => {
    if (cache.size > 8192) cache.delete(cache.keys().next().value!);
    cache.set(key, value);
    return value;
  };
  async function listDir(cid: string) {
    const hit = dirCache.get(cid);
    if (hit) return hit;
    const entries = new Map<string, string>();
    for await (const e of fs.ls(CID.parse(cid), bounded())) entries.set(e.name, e.cid.toString());
    return remember(dirCache, cid, entries);
  }
  async function statOf(cid: string) {
    const hit = statCache.get(cid);
    if (hit) return hit;
    const st = await fs.stat(CID.parse(cid), bounded());
    return remember(statCache, cid, { dir: st.type === "directory", size: Number(st.size) });
  }

  return {
    helia,
    fs,
    async addBytes(bytes) {
      await ensureSpace(dataDir, bytes.length, "content");
      try {
        return (await fs.addBytes(bytes, { rawLeaves: true })).toString();
      } catch (err) {
        rethrowDiskFull(err, dataDir, "content");
      }
    },
    async addTree(files) {
      const total = Object.values(files).reduce((n, b) => n + b.length, 0);
      await ensureSpace(dataDir, total, `${Object.keys(files).length} files`);
      const entries = Object.entries(files).map(([path, content]) => ({ path: `root/${path}`, content }));
      if (entries.length === 0) return (await fs.addDirectory()).toString();
      let root: string | undefined;
      try {
        for await (const e of fs.addAll(entries, { rawLeaves: true })) {
          if (e.path === "root") root = e.cid.toString();
        }
      } catch (err) {
        rethrowDiskFull(err, dataDir, "a directory tree");
      }
      if (!root) throw new TauError("storing a directory tree produced no root");
      return root;
    },
    async cat(cid, range) {
      const parsed = parseCid(cid);
      const chunks: Uint8Array[] = [];
      try {
        const options = range ? { offset: range.offset, length: range.length, ...bounded() } : bounded();
        for await (const c of fs.cat(parsed, options)) {
          chunks.push(c);
        }
      } catch (err) {
        throw new TauError(`content ${cid} is not in this node's store`, { status: 404, cause: err });
      }
      return concatBytes(chunks);
    },
    async resolveFile(root, path) {
      let current = root;
      for (const part of path.split("/").filter(Boolean)) {
        if (!(await statOf(current)).dir) return undefined;
        const next = (await listDir(current)).get(part);
        if (!next) return undefined;
        current = next;
      }
      const st = await statOf(current);
      return st.dir ? undefined : { cid: current, size: st.size };
    },
    async has(cid) {
      return await blockstore.has(parseCid(cid));
    },
    async close() {
      await helia.stop();
    },
  };
}

function parseCid(cid: string): CID {
  try {
    return CID.parse(cid);
  } catch (err) {
    throw new TauError(`'${cid}' is not a CID`, { status: 400, cause: err });
  }
}
