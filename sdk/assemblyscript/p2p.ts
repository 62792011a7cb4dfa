// deno-fmt-ignore-file -- AssemblyScript decorators on declared functions are not TypeScript; the formatter would drop them.
// tau SDK for AssemblyScript: p2p commands. A command goes to the function of this project whose trigger is
// `{type: p2p, protocol, command}`; its response body is the answer. These wrap Taubyte's p2p calls (module
// "taubyte/sdk", docs/abi.md). sendCommand traps on failure (the node logs why); trySendCommand returns the errno.
// A function run by a command reads it with Request (body = data, x-tau-protocol / x-tau-command / x-tau-from /
// x-tau-to headers) and answers with Response.
//
//   export function ask(): void {
//     new Response().sendBytes(sendCommand("/hello/v1", "ping", Uint8Array.wrap(String.UTF8.encode("hi"))));
//   }

@external("taubyte/sdk", "newCommand")
declare function newCommand(protocolPtr: usize, protocolLen: u32, commandPtr: usize, commandLen: u32, idPtr: usize): u32;
@external("taubyte/sdk", "sendCommand")
declare function hostSendCommand(id: u32, dataPtr: usize, dataLen: u32, sizePtr: usize): u32;
@external("taubyte/sdk", "sendCommandTo")
declare function hostSendCommandTo(id: u32, cidPtr: usize, dataPtr: usize, dataLen: u32, sizePtr: usize): u32;
@external("taubyte/sdk", "readCommandResponse")
declare function readCommandResponse(id: u32, bufPtr: usize, bufLen: u32): u32;
@external("taubyte/sdk", "listenToProtocolSize")
declare function listenToProtocolSize(protocolPtr: usize, protocolLen: u32, sizePtr: usize): u32;
@external("taubyte/sdk", "listenToProtocol")
declare function hostListenToProtocol(protocolPtr: usize, protocolLen: u32, bufPtr: usize, bufLen: u32): u32;
@external("taubyte/sdk", "discoverPeersSize")
declare function discoverPeersSize(max: u32, nsTimeout: u32, idPtr: usize, sizePtr: usize): u32;
@external("taubyte/sdk", "discoverPeers")
declare function hostDiscoverPeers(id: u32, bufPtr: usize): u32;

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/** Taubyte's hosts read a peer's CID from a buffer of this size. */
const CID_BUFFER: i32 = 64;

/** What a command got: errno 0 and the answer, or the errno (45: no such protocol, 44: no such command, 43: failed). */
export class CommandAnswer {
  constructor(public errno: u32, public data: Uint8Array) {}
  get ok(): bool {
    return this.errno == 0;
  }
  text(): string {
    return String.UTF8.decode(this.data.buffer.slice(this.data.byteOffset, this.data.byteOffset + this.data.byteLength));
  }
}

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

/** A base58 peer id (tau nodes prints them) as its CID bytes in a CID_BUFFER-sized buffer; null if it is none. */
function peerCid(peer: string): Uint8Array | null {
  const digits = new Array<i32>(); // little-endian base-256 digits
  for (let i = 0; i < peer.length; i++) {
    let carry = ALPHABET.indexOf(peer.charAt(i));
    if (carry < 0) return null;
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j] * 58;
      digits[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      digits.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (let i = 0; i < peer.length && peer.charAt(i) == "1"; i++) digits.push(0);
  if (digits.length + 2 > CID_BUFFER) return null;
  const out = new Uint8Array(CID_BUFFER);
  out[0] = 1; // CIDv1
  out[1] = 0x72; // libp2p-key
  for (let i = 0; i < digits.length; i++) out[2 + i] = <u8>digits[digits.length - 1 - i];
  return out;
}

/** A peer's CID bytes as its base58 id (the multihash after the version and codec bytes). */
function cidPeer(cid: Uint8Array): string {
  const mh = cid.subarray(2);
  const digits = new Array<i32>();
  for (let i = 0; i < mh.length; i++) {
    let carry = <i32>mh[i];
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j] << 8;
      digits[j] = carry % 58;
      carry = carry / 58;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = carry / 58;
    }
  }
  let out = "";
  for (let i = 0; i < mh.length && mh[i] == 0; i++) out += "1";
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET.charAt(digits[i]);
  return out;
}

function send(protocol: string, command: string, data: Uint8Array, to: string): CommandAnswer {
  const p = utf8(protocol);
  const c = utf8(command);
  const slot = new ArrayBuffer(8);
  let err = newCommand(changetype<usize>(p), p.byteLength, changetype<usize>(c), c.byteLength, changetype<usize>(slot));
  if (err != 0) return new CommandAnswer(err, new Uint8Array(0));
  const id = load<u32>(changetype<usize>(slot));
  if (to.length == 0 || to == "local") { // "local": tau dev's one node, which answers every command itself
    err = hostSendCommand(id, data.dataStart, data.byteLength, changetype<usize>(slot));
  } else {
    const cid = peerCid(to);
    if (cid == null) return new CommandAnswer(19, new Uint8Array(0)); // invalidCid
    err = hostSendCommandTo(id, cid.dataStart, data.dataStart, data.byteLength, changetype<usize>(slot));
  }
  if (err != 0) return new CommandAnswer(err, new Uint8Array(0));
  const answer = new Uint8Array(load<u32>(changetype<usize>(slot)));
  if (answer.byteLength > 0) err = readCommandResponse(id, answer.dataStart, answer.byteLength);
  return new CommandAnswer(err, answer);
}

/** Sends `command` on `protocol` (to `to`, a peer id, when given); the errno instead of a trap on failure. */
export function trySendCommand(protocol: string, command: string, data: Uint8Array, to: string = ""): CommandAnswer {
  return send(protocol, command, data, to);
}

/** Sends `command` on `protocol`; the answer. Traps on failure. */
export function sendCommand(protocol: string, command: string, data: Uint8Array): Uint8Array {
  const a = send(protocol, command, data, "");
  if (!a.ok) throw new Error("sendCommand " + protocol + " " + command + " failed: taubyte/sdk errno " + a.errno.toString());
  return a.data;
}

/** Sends `command` on `protocol` to the node `peer` (a peer id); the answer. Traps on failure. */
export function sendCommandTo(peer: string, protocol: string, command: string, data: Uint8Array): Uint8Array {
  const a = send(protocol, command, data, peer);
  if (!a.ok) throw new Error("sendCommandTo " + peer + " " + protocol + " " + command + " failed: taubyte/sdk errno " + a.errno.toString());
  return a.data;
}

/** The protocol as the cloud serves it for this project (Taubyte's Listen). Traps when the project has no such one. */
export function listenToProtocol(protocol: string): string {
  const p = utf8(protocol);
  const slot = new ArrayBuffer(8);
  let err = listenToProtocolSize(changetype<usize>(p), p.byteLength, changetype<usize>(slot));
  if (err != 0) throw new Error("listenToProtocol " + protocol + " failed: taubyte/sdk errno " + err.toString());
  const out = new ArrayBuffer(load<u32>(changetype<usize>(slot)));
  err = hostListenToProtocol(changetype<usize>(p), p.byteLength, changetype<usize>(out), out.byteLength);
  if (err != 0) throw new Error("listenToProtocol " + protocol + " failed: taubyte/sdk errno " + err.toString());
  return String.UTF8.decode(out);
}

/** Up to `max` other nodes that answer commands (peer ids, least loaded first); none on `tau dev`. */
export function discoverPeers(max: u32 = 32): string[] {
  const slots = new ArrayBuffer(8);
  const at = changetype<usize>(slots);
  const err = discoverPeersSize(max, 1000000000, at, at + 4);
  if (err != 0) throw new Error("discoverPeers failed: taubyte/sdk errno " + err.toString());
  const peers = new Array<string>();
  const size = load<u32>(at + 4);
  if (size == 0) return peers;
  const list = new Uint8Array(size);
  const err2 = hostDiscoverPeers(load<u32>(at), list.dataStart);
  if (err2 != 0) throw new Error("discoverPeers failed: taubyte/sdk errno " + err2.toString());
  for (let i = 0; i + 2 <= list.length;) {
    const n = <i32>list[i] | (<i32>list[i + 1] << 8);
    peers.push(cidPeer(list.subarray(i + 2, i + 2 + n)));
    i += 2 + n;
  }
  return peers;
}
