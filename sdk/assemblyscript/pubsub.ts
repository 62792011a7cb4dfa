// deno-fmt-ignore-file -- AssemblyScript decorators on declared functions are not TypeScript; the formatter would drop them.
// tau SDK for AssemblyScript: pubsub messaging. Publishing wraps Taubyte's `publishToChannel` (module "taubyte/sdk",
// docs/abi.md), so one host implementation serves Go, Rust and AssemblyScript functions. A function whose trigger
// is pubsub reads its message like a request: the data is the body, the channel the x-tau-channel header.
//
//   export function notify(): void {
//     const err = publish("orders", "new order");   // 0, or Taubyte's errno (the function's log says why)
//     new Response().status(err == 0 ? 200 : 500).send(webSocketURL("orders"));
//   }
//   export function onOrder(): void {                // trigger: {type: pubsub, channel: orders}
//     log("got " + messageText() + " on " + messageChannel());
//   }

@external("tau", "req_len")
declare function req_len(field: i32): i32;
@external("tau", "req_read")
declare function req_read(field: i32, ptr: usize, len: i32): i32;
@external("tau", "header_get")
declare function header_get(namePtr: usize, nameLen: i32, outPtr: usize, outLen: i32): i32;
@external("taubyte/sdk", "publishToChannel")
declare function publishToChannel(chPtr: usize, chLen: u32, dataPtr: usize, dataLen: u32): u32;
@external("taubyte/sdk", "getWebSocketURLSize")
declare function getWebSocketURLSize(chPtr: usize, chLen: u32, sizePtr: usize): u32;
@external("taubyte/sdk", "getWebSocketURL")
declare function getWebSocketURL(chPtr: usize, chLen: u32, urlPtr: usize): u32;

/** Publishes text (UTF-8) on a channel of this function's project. Returns 0, or the errno (21: publish failed). */
export function publish(channel: string, data: string): u32 {
  const bytes = Uint8Array.wrap(String.UTF8.encode(data));
  return publishBytes(channel, bytes);
}

/** Publishes bytes on a channel. Returns 0, or the errno (21: publish failed; the function's log says why). */
export function publishBytes(channel: string, data: Uint8Array): u32 {
  const ch = String.UTF8.encode(channel);
  return publishToChannel(changetype<usize>(ch), ch.byteLength, data.dataStart, data.byteLength);
}

/**
 * The URL a browser opens to join the channel: `ws://<domain>:<ws port>/ws-<hash>/<channel>` (open it as it is;
 * tau serves WebSockets on a port of their own, docs/events.md). Traps when the channel has no bridge.
 */
export function webSocketURL(channel: string): string {
  const ch = String.UTF8.encode(channel);
  const size = new ArrayBuffer(4);
  let err = getWebSocketURLSize(changetype<usize>(ch), ch.byteLength, changetype<usize>(size));
  if (err != 0) throw new Error("webSocketURL(" + channel + ") failed: taubyte/sdk errno " + err.toString());
  const out = new ArrayBuffer(load<u32>(changetype<usize>(size)));
  err = getWebSocketURL(changetype<usize>(ch), ch.byteLength, changetype<usize>(out));
  if (err != 0) throw new Error("webSocketURL(" + channel + ") failed: taubyte/sdk errno " + err.toString());
  return String.UTF8.decode(out);
}

/** In a pubsub-triggered call: the channel of the message (null in an HTTP call). */
export function messageChannel(): string | null {
  const key = String.UTF8.encode("x-tau-channel");
  const n = header_get(changetype<usize>(key), key.byteLength, 0, 0);
  if (n < 0) return null;
  const out = new ArrayBuffer(n);
  if (n > 0) header_get(changetype<usize>(key), key.byteLength, changetype<usize>(out), n);
  return String.UTF8.decode(out);
}

/** In a pubsub-triggered call: the message's data (the request body, field 4 of the tau ABI). */
export function messageData(): Uint8Array {
  const n = req_len(4);
  const buf = new ArrayBuffer(n < 0 ? 0 : n);
  if (n > 0) req_read(4, changetype<usize>(buf), n);
  return Uint8Array.wrap(buf);
}

/** In a pubsub-triggered call: the message's data as UTF-8 text. */
export function messageText(): string {
  return String.UTF8.decode(messageData().buffer);
}
