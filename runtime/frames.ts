/**
 * One wire format for messages: CBOR values, each behind a varint length. Nodes speak it to each other
 * (services/p2p/rpc.ts) and to their helper processes (runtime/helper). CBOR rather than JSON because much of what
 * travels is bytes (wasm modules, body chunks), which it carries without base64.
 */
import { decode, encode } from "cborg";
import * as varint from "uint8-varint";
import { concatBytes } from "./bytes.ts";

/** One value as a frame. */
export function encodeFrame(value: unknown): Uint8Array {
  const bytes = encode(value);
  const out = new Uint8Array(varint.encodingLength(bytes.length) + bytes.length);
  varint.encodeUint8Array(bytes.length, out);
  out.set(bytes, out.length - bytes.length);
  return out;
}

/** The values framed on `stream`, in order; throws on a frame above `maxFrame` bytes or a stream cut mid-frame. */
export async function* readFrames(stream: ReadableStream<Uint8Array>, maxFrame: number): AsyncGenerator<unknown> {
  // Chunks are joined once per frame (when it is complete), so a big frame arriving in small chunks costs one copy.
  let parts: Uint8Array[] = [];
  let size = 0;
  let header: { length: number; offset: number } | null = null;
  for await (const chunk of stream) {
    parts.push(chunk);
    size += chunk.length;
    while (size > 0) {
      if (!header) {
        parts = [concatBytes(parts)];
        header = headerOf(parts[0]);
        if (!header) break;
        if (header.length > maxFrame) {
          throw new Error(`a frame of ${header.length} bytes is over the ${maxFrame} limit`);
        }
      }
      const end = header.offset + header.length;
      if (size < end) break;
      const flat = concatBytes(parts);
      yield decode(flat.subarray(header.offset, end));
      const rest = flat.subarray(end);
      parts = rest.length > 0 ? [rest] : [];
      size = rest.length;
      header = null;
    }
  }
  if (size > 0) throw new Error(`the stream ended inside a frame (${size} bytes left)`);
}

/** The length and where the value starts, once the whole varint has arrived. */
function headerOf(buf: Uint8Array): { length: number; offset: number } | null {
  for (let i = 0; i < Math.min(buf.length, 10); i++) {
    if ((buf[i] & 0x80) === 0) return { length: varint.decodeUint8Array(buf, 0), offset: i + 1 };
  }
  return null;
}
