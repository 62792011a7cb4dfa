/**
 * Pubsub calls (Taubyte's `pubsub/node` and `pubsub/event` packages). Node calls reach the node's message bus
 * (host/services.ts PubsubOps): publishing is an effect (it never runs twice: mod.ts), the WebSocket URL and the
 * subscription check are reads. Event calls read the message a pubsub-triggered call was given (CallInput.event),
 * pure and inline. Signatures (go-sdk-symbols): channel strings are (ptr, len); the data is (ptr, size); the event
 * calls take the event id and write a size (u32) or the bytes into a buffer the guest sized with the size call.
 */
import {
  type AsyncCalls,
  encoder,
  Errno,
  failed,
  type GuestAccess,
  type SyncCalls,
  type TaubyteCall,
  withinDeadline,
} from "./abi.ts";
import { HostError } from "../host/services.ts";

/** Taubyte's errnos for these calls (go-sdk errno: their place in its iota list). */
export const PubsubErrno = {
  nilAddress: 4,
  subscribeFailed: 20,
  publishFailed: 21,
  getWebSocketURLFailed: 38,
  channelNotFound: 40,
} as const;

/** A channel name longer than this is refused before it is decoded (services/pubsub caps names at 256 bytes). */
const MAX_CHANNEL_BYTES = 1024;

export function pubsubCalls(g: GuestAccess, current: () => TaubyteCall) {
  const ops = () => {
    const o = current().host.pubsub;
    if (!o) throw new HostError("unbound", "this function's node has no message bus");
    return o;
  };
  const channel = (ptr: number, len: number) => (len > MAX_CHANNEL_BYTES ? null : g.text(ptr, len));
  /** The URL once per event and channel: the guest asks for its size, then its bytes. */
  const url = async (c: TaubyteCall, name: string) => {
    const what = `wsurl\0${name}`;
    let v = c.event.cache.get(what);
    if (!v) c.event.cache.set(what, v = encoder.encode(await withinDeadline(ops().webSocketURL(name))));
    return v;
  };
  const asyncCalls: AsyncCalls = {
    async publishToChannel(chPtr: number, chLen: number, dataPtr: number, dataLen: number) {
      const c = current();
      const name = channel(chPtr, chLen);
      const data = g.bytes(dataPtr, dataLen);
      if (name === null || data === null) return Errno.addressOutOfMemory;
      try {
        await withinDeadline(ops().publish(name, data));
        return Errno.none;
      } catch (err) {
        return failed(c, err, PubsubErrno.publishFailed);
      }
    },
    async setSubscriptionChannel(chPtr: number, chLen: number) {
      const c = current();
      const name = channel(chPtr, chLen);
      if (name === null) return Errno.addressOutOfMemory;
      try {
        await withinDeadline(ops().subscribe(name));
        return Errno.none;
      } catch (err) {
        return failed(c, err, PubsubErrno.subscribeFailed);
      }
    },
    async getWebSocketURLSize(chPtr: number, chLen: number, sizePtr: number) {
      const c = current();
      const name = channel(chPtr, chLen);
      if (name === null) return Errno.addressOutOfMemory;
      try {
        return g.writeU32(sizePtr, (await url(c, name)).length);
      } catch (err) {
        return failed(c, err, PubsubErrno.getWebSocketURLFailed);
      }
    },
    async getWebSocketURL(chPtr: number, chLen: number, urlPtr: number) {
      const c = current();
      const name = channel(chPtr, chLen);
      if (name === null) return Errno.addressOutOfMemory;
      try {
        return g.writeOut(await url(c, name), urlPtr);
      } catch (err) {
        return failed(c, err, PubsubErrno.getWebSocketURLFailed);
      }
    },
  };

  /** The pubsub message of event `eventId`, or the errno: another event, or a call that is not a pubsub one. */
  const message = (eventId: number): { channel: string; data: Uint8Array } | number => {
    const c = current();
    if (c.event.id !== eventId) return Errno.eventNotFound;
    const e = c.call.input.event;
    return e?.kind === "pubsub" ? e : PubsubErrno.nilAddress;
  };
  const channelBytes = (eventId: number) => {
    const m = message(eventId);
    if (typeof m === "number") return m;
    const c = current();
    let v = c.event.cache.get("pubsub-channel");
    if (!v) c.event.cache.set("pubsub-channel", v = encoder.encode(m.channel));
    return v;
  };
  const syncCalls: SyncCalls = {
    getMessageDataSize(eventId: number, sizePtr: number) {
      const m = message(eventId);
      return typeof m === "number" ? m : g.writeU32(sizePtr, m.data.length);
    },
    getMessageData(eventId: number, bufPtr: number) {
      const m = message(eventId);
      return typeof m === "number" ? m : g.writeOut(m.data, bufPtr);
    },
    getMessageChannelSize(eventId: number, sizePtr: number) {
      const v = channelBytes(eventId);
      return typeof v === "number" ? v : g.writeU32(sizePtr, v.length);
    },
    getMessageChannel(eventId: number, bufPtr: number) {
      const v = channelBytes(eventId);
      return typeof v === "number" ? v : g.writeOut(v, bufPtr);
    },
  };
  return { sync: syncCalls, async: asyncCalls, effects: ["publishToChannel"] };
}
