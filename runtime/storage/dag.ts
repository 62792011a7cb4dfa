/**
 * Whole DAGs in the content store: which blocks of a DAG are here, and fetching every missing one from peers.
 * Our UnixFS DAGs have small dag-pb interior nodes and raw leaves (content is added with rawLeaves), so a walk reads
 * and decodes the interior nodes and only asks "present?" of a local leaf, without reading it.
 * Blocks are visited CONCURRENCY at a time: a missing block costs a bitswap round trip, and one at a time (what
 * Helia's own graph walkers do) leaves the connection idle between blocks.
 */
import type { Helia } from "helia";
import { createUnsafe } from "multiformats/block";
import type { CID } from "multiformats/cid";
import { concatBytes } from "../bytes.ts";

const RAW = 0x55;
/**
 * Blocks in flight at once. bench/hoard_bench.ts, 64 MiB with a swarm key: one at a time ran at about half the rate
 * of 8 to 64 in flight (22 vs 36-44 MiB/s); 8, 32 and 64 were within noise of each other.
 */
export const WALK_CONCURRENCY = 32;

export interface WalkOptions {
  /** Fetch missing blocks from peers (bitswap); without it a missing block is noted and its children are unknown. */
  fetch: boolean;
  signal?: AbortSignal;
  concurrency?: number;
}

export interface WalkResult {
  /** Every block of the DAG present locally when the walk ended. */
  blocks: CID[];
  /** Blocks absent locally (only without `fetch`). */
  missing: CID[];
  /** Bytes fetched from peers by this walk. */
  fetchedBytes: number;
}

async function readBlock(helia: Helia, cid: CID, opts: { offline: boolean; signal?: AbortSignal }) {
  const parts: Uint8Array[] = [];
  for await (const part of helia.blockstore.get(cid, opts)) parts.push(part);
  return concatBytes(parts);
}

export async function walkDag(helia: Helia, root: CID, opts: WalkOptions): Promise<WalkResult> {
  const result: WalkResult = { blocks: [], missing: [], fetchedBytes: 0 };
  const seen = new Set<string>([root.toString()]);
  const queue: CID[] = [root];
  const concurrency = opts.concurrency ?? WALK_CONCURRENCY;

  const visit = async (cid: CID) => {
    const local = await helia.blockstore.has(cid);
    if (!local && !opts.fetch) {
      result.missing.push(cid);
      return;
    }
    if (cid.code === RAW && local) {
      result.blocks.push(cid);
      return;
    }
    const bytes = await readBlock(helia, cid, { offline: !opts.fetch, signal: opts.signal });
    if (!local) result.fetchedBytes += bytes.length;
    result.blocks.push(cid);
    if (cid.code === RAW) return;
    const block = createUnsafe({ cid, bytes, codec: await helia.getCodec(cid.code) });
    for (const [, link] of block.links()) {
      const key = link.toString();
      if (!seen.has(key)) {
        seen.add(key);
        queue.push(link);
      }
    }
  };

  await new Promise<void>((resolve, reject) => {
    let active = 0;
    let failed = false;
    const pump = () => {
      while (!failed && active < concurrency && queue.length) {
        active++;
        visit(queue.shift()!).then(() => {
          active--;
          pump();
        }, (err) => {
          failed = true;
          reject(err);
        });
      }
      if (!failed && active === 0 && queue.length === 0) resolve();
    };
    pump();
  });
  return result;
}
