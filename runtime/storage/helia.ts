/**
 * The node's content-addressed store: a lean Helia with file-backed blocks under the data dir.
 * The light Helia (helia_core.ts) has no libp2p, no routers and no block brokers, so nothing here ever contacts the public IPFS
 * network. A node of a multi-node cloud hands in its own libp2p node: bitswap then fetches a missing block from the
 * cloud's peers (inside the private swarm), bounded by FETCH_TIMEOUT_MS, instead of answering "not here".
 */
import { concatBytes } from "../bytes.ts";
import type { Helia } from "helia";
import { createHeliaCore } from "./helia_core.ts";
import type { Libp2p } from "@libp2p/interface";
import { type UnixFS, unixfs } from "@helia/unixfs";
import { FsBlockstore } from "blockstore-fs";
import { FsDatastore } from "datastore-fs";
import { CID } from "multiformats/cid";
import { join } from "node:path";
import { TauError } from "../errors.ts";
import { ensureSpace, rethrowDiskFull } from "./space.ts";
import { walkDag } from "./dag.ts";
import { answerRepeatedWants } from "./bitswap_rewant.ts";

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
  /** Whether every block of the DAG under `cid` is on this node (a root block alone is not the content). */
  has(cid: string): Promise<boolean>;
  /** Every missing block of the DAG under `cid` fetched from peers (by `signal`, else FETCH_TIMEOUT_MS); TauError 503. */
  fetchDag(cid: string, opts?: { signal?: AbortSignal }): Promise<{ blocks: number; fetchedBytes: number }>;
  /** The blocks of the DAG under `cid` that are on this node (what deleting it would free). */
  localBlocks(cid: string): Promise<string[]>;
  /** Delete blocks; returns how many were here. */
  deleteBlocks(cids: string[]): Promise<number>;
  close(): Promise<void>;
}

/** How long a read waits for peers to send a block this node lacks. */
export const FETCH_TIMEOUT_MS = 15_000;

export async function openContentStore(dataDir: string, opts: { libp2p?: Libp2p } = {}): Promise<ContentStore> {
  const blockstore = new FsBlockstore(join(dataDir, "blocks"));
  const datastore = new FsDatastore(join(dataDir, "datastore"));
  const helia = await createHeliaCore({ blockstore, datastore });
  if (opts.libp2p) {
    // Bitswap reads `libp2p` off the node it is given; the light Helia has none of its own, so it gets ours.
    Object.defineProperty(helia, "libp2p", { value: opts.libp2p, enumerable: true });
    // Loaded only here: `tau dev` has no peers and starts without it.
    const { withBitswap } = await import("@helia/bitswap");
    withBitswap(helia as Parameters<typeof withBitswap>[0]);
  }
  await helia.start();
  if (opts.libp2p && !answerRepeatedWants(helia)) {
    throw new TauError("this build of @helia/bitswap is not the one tau patches (runtime/storage/bitswap_rewant.ts)");
  }
  const networked = opts.libp2p !== undefined;
  const bounded = () => networked ? { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) } : {};
  /** A read that failed: on a networked node the content was neither here nor sent by a peer in time. */
  const unavailable = (cid: string, err: unknown) =>
    networked
      ? new TauError(`content ${cid} is not on this node and no peer sent it within ${FETCH_TIMEOUT_MS / 1000} s`, {
        status: 503,
        hint: "check that the nodes holding it are up: tau nodes",
        cause: err,
      })
      : new TauError(`content ${cid} is not in this node's store`, { status: 404, cause: err });
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
    try {
      for await (const e of fs.ls(CID.parse(cid), bounded())) entries.set(e.name, e.cid.toString());
    } catch (err) {
      throw unavailable(cid, err);
    }
    return remember(dirCache, cid, entries);
  }
  async function statOf(cid: string) {
    const hit = statCache.get(cid);
    if (hit) return hit;
    const st = await fs.stat(CID.parse(cid), bounded()).catch((err) => {
      throw unavailable(cid, err);
    });
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
        throw unavailable(cid, err);
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
      return (await walkDag(helia, parseCid(cid), { fetch: false })).missing.length === 0;
    },
    async fetchDag(cid, opts = {}) {
      const parsed = parseCid(cid);
      if (!networked) {
        const { missing, blocks } = await walkDag(helia, parsed, { fetch: false });
        if (missing.length) throw unavailable(cid, new Error(`${missing.length} blocks missing`));
        return { blocks: blocks.length, fetchedBytes: 0 };
      }
      try {
        const signal = opts.signal ?? AbortSignal.timeout(FETCH_TIMEOUT_MS);
        const { blocks, fetchedBytes } = await walkDag(helia, parsed, { fetch: true, signal });
        return { blocks: blocks.length, fetchedBytes };
      } catch (err) {
        throw new TauError(`content ${cid} could not be fetched from peers: ${(err as Error).message}`, {
          status: 503,
          hint: "check that the nodes holding it are up: tau nodes",
          cause: err,
        });
      }
    },
    async localBlocks(cid) {
      return (await walkDag(helia, parseCid(cid), { fetch: false })).blocks.map((b) => b.toString());
    },
    async deleteBlocks(cids) {
      let n = 0;
      for (const c of cids) {
        const parsed = CID.parse(c);
        if (!(await blockstore.has(parsed))) continue;
        await blockstore.delete(parsed);
        n++;
      }
      return n;
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
