/**
 * A node's identity and the cloud's swarm key, in the formats Taubyte writes: the private key is libp2p's protobuf
 * encoding in base64 (the shape config's `privatekey`), the swarm key is the go-libp2p pnet file
 * (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits).
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import type { PrivateKey } from "@libp2p/interface";
import { TauError } from "../../runtime/errors.ts";

export interface NodeIdentity {
  privateKey: PrivateKey;
  peerId: string;
  /** base64 of the protobuf-encoded private key: the shape config's `privatekey`. */
  encoded: string;
}

export async function newIdentity(): Promise<NodeIdentity> {
  const privateKey = await generateKeyPair("Ed25519");
  return identityOf(privateKey);
}

export function identityOf(privateKey: PrivateKey): NodeIdentity {
  const bytes = privateKeyToProtobuf(privateKey);
  return {
    privateKey,
    peerId: peerIdFromPrivateKey(privateKey).toString(),
    encoded: btoa(String.fromCharCode(...bytes)),
  };
}

export function decodeIdentity(encoded: string, where: string): NodeIdentity {
  try {
    const bytes = Uint8Array.from(atob(encoded.trim()), (c) => c.charCodeAt(0));
    return identityOf(privateKeyFromProtobuf(bytes));
  } catch (err) {
    throw new TauError(`${where}: privatekey is not a base64 libp2p private key`, {
      hint: "generate the node's config again with tau config generate",
      cause: err,
    });
  }
}

const SWARM_HEADER = "/key/swarm/psk/1.0.0/\n/base16/\n";

export function newSwarmKey(): string {
  const hex = [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${SWARM_HEADER}${hex}\n`;
}

/** Checks a swarm key file's text; returns it normalised (what @libp2p/pnet's preSharedKey takes, as bytes). */
export function parseSwarmKey(text: string, where: string): Uint8Array {
  const lines = text.replace(/\r/g, "").split("\n").filter((l) => l !== "");
  if (
    lines.length !== 3 || lines[0] !== "/key/swarm/psk/1.0.0/" || lines[1] !== "/base16/" ||
    !/^[0-9a-fA-F]{64}$/.test(lines[2])
  ) {
    throw new TauError(`${where} is not a swarm key`, {
      hint:
        "a swarm key has three lines: /key/swarm/psk/1.0.0/, /base16/, 64 hex digits (tau config generate --new-swarm-key writes one)",
    });
  }
  return new TextEncoder().encode(`${lines[0]}\n${lines[1]}\n${lines[2].toLowerCase()}`);
}
