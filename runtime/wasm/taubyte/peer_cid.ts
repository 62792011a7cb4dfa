/**
 * Peer ids as Taubyte's p2p calls pass them: a CID (libp2p's peer.ToCid: CIDv1, codec libp2p-key 0x72, the peer
 * id's multihash), as bytes. tau names peers by their base58btc string (libp2p's PeerId.toString()), so the ABI
 * converts at the edge. `tau dev` has no peer id: its node is "local", carried as an identity multihash of that
 * word so a guest's CID parser still accepts it.
 */

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const INDEX = new Map([...ALPHABET].map((c, i) => [c, i]));
const LIBP2P_KEY = 0x72;
const LOCAL = "local";
/** Taubyte's guests hand over a 64-byte buffer (go-sdk codec.CidBufferSize) and the host parses a CID from it. */
export const CID_BUFFER_BYTES = 64;

function base58Decode(s: string): Uint8Array | null {
  let n = 0n;
  for (const c of s) {
    const v = INDEX.get(c);
    if (v === undefined) return null;
    n = n * 58n + BigInt(v);
  }
  const bytes: number[] = [];
  while (n > 0n) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  for (const c of s) {
    if (c !== "1") break;
    bytes.unshift(0);
  }
  return new Uint8Array(bytes);
}

function base58Encode(b: Uint8Array): string {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  let out = "";
  while (n > 0n) {
    out = ALPHABET[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const x of b) {
    if (x !== 0) break;
    out = "1" + out;
  }
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) out.push((n & 0x7f) | 0x80), n >>>= 7;
  out.push(n);
  return out;
}

/** Reads one unsigned varint at `at`; null past the end or above 2^28 (no CID field is that large). */
function readVarint(b: Uint8Array, at: number): [number, number] | null {
  let n = 0;
  for (let shift = 0, i = at; i < b.length && shift < 28; shift += 7, i++) {
    n |= (b[i] & 0x7f) << shift;
    if (b[i] < 0x80) return [n, i + 1];
  }
  return null;
}

/** A peer (its base58 id, or "local") as the bytes of its CID; null when the string is no peer id. */
export function peerToCid(peer: string): Uint8Array | null {
  const mh = peer === LOCAL
    ? new Uint8Array([0, LOCAL.length, ...new TextEncoder().encode(LOCAL)])
    : base58Decode(peer);
  if (!mh || mh.length < 2) return null;
  return new Uint8Array([...varint(1), ...varint(LIBP2P_KEY), ...mh]);
}

/** The peer a CID names (its multihash as a base58 peer id), read from the start of `b`; null when it is no CID. */
export function cidToPeer(b: Uint8Array): string | null {
  // CIDv0 is a bare sha2-256 multihash (0x12 0x20 + 32 bytes).
  if (b[0] === 0x12 && b[1] === 0x20) return b.length >= 34 ? base58Encode(b.subarray(0, 34)) : null;
  const version = readVarint(b, 0);
  if (!version || version[0] !== 1) return null;
  const codec = readVarint(b, version[1]);
  if (!codec) return null;
  const code = readVarint(b, codec[1]);
  const len = code && readVarint(b, code[1]);
  if (!code || !len || len[1] + len[0] > b.length) return null;
  const mh = b.subarray(codec[1], len[1] + len[0]);
  const digest = b.subarray(len[1], len[1] + len[0]);
  if (code[0] === 0 && new TextDecoder().decode(digest) === LOCAL) return LOCAL;
  return base58Encode(mh);
}
