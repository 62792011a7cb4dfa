/**
 * A fix for @helia/bitswap 4.0.19 (the latest release): a peer that wants a block again after the block was sent to
 * it once is never answered. The sender's ledger keeps each sent want (status "sent", for doNotResendBlockWindow,
 * 5 s) and leaves a new want for the same block at "sent"; the entry then expires in the very pass that should have
 * answered it. The asker never repeats a want, and never sends a cancel either (WantList.sendMessages skips every
 * cancelled entry), so it waits until its timeout. That is what a hoarder does whenever it takes back a CID it once
 * dropped (measured: fetch, delete the blocks, fetch again: the second fetch hangs). The fix: a new want for a block
 * already sent to that peer opens it again.
 */
import type { Helia } from "helia";
import { CID } from "multiformats/cid";
import { base64 } from "multiformats/bases/base64";

interface WantEntry {
  cid: Uint8Array;
  cancel?: boolean;
}
interface Ledger {
  wants: Map<string, { status: string }>;
}
interface PeerWantLists {
  ledgerMap: { get(peer: unknown): Ledger | undefined };
  receiveMessage(peer: unknown, message: { wantlist?: { entries: WantEntry[] } }): void;
}
interface BitswapBroker {
  name: string;
  bitswap?: { peerWantLists?: PeerWantLists };
}

/** Patch the started Helia's bitswap; a no-op (false) when it has none or the internals moved. */
export function answerRepeatedWants(helia: Helia): boolean {
  const brokers = (helia as unknown as { blockBrokers?: BitswapBroker[] }).blockBrokers ?? [];
  const lists = brokers.find((b) => b.name === "bitswap")?.bitswap?.peerWantLists;
  if (!lists || typeof lists.receiveMessage !== "function" || !lists.ledgerMap) return false;
  const receive = lists.receiveMessage.bind(lists);
  lists.receiveMessage = (peer, message) => {
    const ledger = lists.ledgerMap.get(peer);
    for (const entry of (ledger && message.wantlist?.entries) || []) {
      if (entry.cancel) continue;
      // The ledger's key: the multihash in unpadded base64 (uint8arrays' "base64").
      const key = base64.baseEncode(CID.decode(entry.cid).multihash.bytes);
      if (ledger!.wants.get(key)?.status === "sent") ledger!.wants.delete(key);
    }
    receive(peer, message);
  };
  return true;
}
