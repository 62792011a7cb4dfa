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

// (3) pnet's cipher (xsalsa20 1.2.0) runs in one wasm memory (capped at 62.5 MiB) shared by every cipher instance;
// each instance keeps a view of it. When one instance grows the memory, every other instance's view is detached
// (length 0), and its next update "grows" the memory by its whole input again. Two instances taking turns (each
// connection has one per direction) leak their input size per turn until grow() throws and the connection aborts:
// measured, a 64 MiB bitswap transfer with a swarm key died in its third round. So before each update an instance
// gets a view of the newest memory, and inputs are cut into 1 MiB slices, which keeps the memory itself small
// (slices are whole 64-byte blocks, so the keystream continues exactly as in one call).
const SLICE = 1 << 20;
type Xor = { update(input: Uint8Array, output?: Uint8Array): Uint8Array; _xor?: { _memory?: Uint8Array } };
const proto = (XSalsa20 as unknown as { prototype: Xor & { __tauSliced?: boolean } }).prototype;
if (!proto.__tauSliced) {
  const update = proto.update;
  /** The wasm memory's buffer as of the last update (memory only grows inside updates). */
  let newest: ArrayBufferLike | undefined;
  proto.update = function (this: Xor, input: Uint8Array, output?: Uint8Array): Uint8Array {
    const wasm = this._xor;
    if (wasm?._memory && newest && wasm._memory.buffer !== newest) wasm._memory = new Uint8Array(newest);
    let out: Uint8Array;
    if (input.length <= SLICE) out = update.call(this, input, output);
    else {
      out = output ?? new Uint8Array(input.length);
      for (let at = 0; at < input.length; at += SLICE) {
        const end = Math.min(input.length, at + SLICE);
        update.call(this, input.subarray(at, end), out.subarray(at, end));
      }
    }
    if (wasm?._memory) newest = wasm._memory.buffer;
    return out;
  };
  proto.__tauSliced = true;
}
