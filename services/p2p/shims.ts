/**
 * Three fixes libp2p needs under Deno 2.9.6 (measured; see platform-facts "Many nodes"). Import this module before
 * anything from libp2p: the patches must be in place when its modules load.
 */
import XSalsa20 from "xsalsa20";

// (1) A lock library that libp2p uses opens a BroadcastChannel and calls unref(), which Deno's BroadcastChannel lacks;
// left open, the channel keeps the process alive after the node stops. Closing it is what unref means here.
const channel = BroadcastChannel.prototype as BroadcastChannel & { unref?: () => void };
if (!channel.unref) {
  channel.unref = function (this: BroadcastChannel) {
    this.close();
  };
}

// (2) AbortSignal.timeout() with a listener keeps the process alive for the whole timeout (~10 s seen after stop):
// the same signal on an unref'd timer.
AbortSignal.timeout = (ms: number): AbortSignal => {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("signal timed out", "TimeoutError")), ms);
  Deno.unrefTimer(timer);
  return controller.signal;
};

// (3) pnet's cipher (xsalsa20 1.2.0) grows a wasm memory capped at 62.5 MiB to the size of each input: bitswap's
// batched sends are larger and abort the connection. 1 MiB slices keep it small; slices are whole 64-byte blocks,
// so the keystream continues exactly as in one call.
const SLICE = 1 << 20;
type Xor = { update(input: Uint8Array, output?: Uint8Array): Uint8Array };
const proto = (XSalsa20 as unknown as { prototype: Xor & { __tauSliced?: boolean } }).prototype;
if (!proto.__tauSliced) {
  const update = proto.update;
  proto.update = function (this: Xor, input: Uint8Array, output?: Uint8Array): Uint8Array {
    if (input.length <= SLICE) return update.call(this, input, output);
    const out = output ?? new Uint8Array(input.length);
    for (let at = 0; at < input.length; at += SLICE) {
      const end = Math.min(input.length, at + SLICE);
      update.call(this, input.subarray(at, end), out.subarray(at, end));
    }
    return out;
  };
  proto.__tauSliced = true;
}
