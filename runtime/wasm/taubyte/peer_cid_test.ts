// Peer ids as Taubyte's p2p calls carry them (CID bytes) agree with libp2p's own conversion (peer.ToCid in Go,
// PeerId.toCID() here), both ways; "local" (tau dev) survives a round trip; what is no CID is refused.
import { assertEquals } from "../../../tests/helpers/assert.ts";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey, peerIdFromString } from "@libp2p/peer-id";
import { cidToPeer, peerToCid } from "./peer_cid.ts";

Deno.test("peer ids to CID bytes and back, as libp2p converts them", async () => {
  for (const type of ["Ed25519", "secp256k1"] as const) {
    const id = peerIdFromPrivateKey(await generateKeyPair(type)).toString();
    const cid = peerToCid(id)!;
    assertEquals([...cid], [...peerIdFromString(id).toCID().bytes], type);
    // A guest hands over a 64-byte buffer: what follows the CID is ignored.
    const buffer = new Uint8Array(64);
    buffer.set(cid);
    assertEquals(cidToPeer(buffer), id);
  }
  assertEquals(cidToPeer(peerToCid("local")!), "local");
  assertEquals(peerToCid("not-base58-0OIl"), null);
  assertEquals(cidToPeer(new Uint8Array([7, 7, 7])), null);
  assertEquals(cidToPeer(new Uint8Array(64)), null);
});
