/**
 * Taubyte's p2p calls (`p2p/node` and `p2p/event` of its go-sdk). A function sends a command on one of its project's
 * protocols and reads the answer (newCommand, sendCommand, sendCommandTo, readCommandResponse); asks which protocol
 * the cloud serves for it (listenToProtocol) and which other nodes answer commands (discoverPeers). A function run
 * by a command reads it (getP2PEvent*) and answers with writeP2PResponse. The node side is HostServices.p2p
 * (host/services.ts): bound to the function's own project, so a function reaches only its own project's functions.
 *
 * Sending is an effect (another function runs): executors only, never run twice. The rest reads.
 * Peers cross as CID bytes (peer_cid.ts). List encoding for discoverPeers: Taubyte's codec for [][]byte, each item
 * a u16 little-endian length and its bytes.
 */
import {
  type AsyncCalls,
  encoder,
  Errno,
  failed,
  type GuestAccess,
  Handles,
  type SyncCalls,
  type TaubyteCall,
  withinDeadline,
} from "./abi.ts";
import { HostError, type P2pOps } from "../host/services.ts";
import { MAX_RESPONSE_BYTES, OutputTooLarge } from "../outcome.ts";
import { CID_BUFFER_BYTES, cidToPeer, peerToCid } from "./peer_cid.ts";

/** Taubyte's p2p errnos (go-sdk errno, by position). */
export const P2pErrno = {
  nilAddress: 4,
  commandCreateFailed: 42,
  sendFailed: 43,
  commandNotFound: 44,
  protocolNotFound: 45,
  fromNotFound: 46,
  toNotFound: 47,
  listenFailed: 48,
  discoverFailed: 117,
} as const;

/** Protocols and commands are short names; longer ones are refused before they are decoded. */
const MAX_NAME_BYTES = 1024;
/** Taubyte's discover takes a count; more than this is answered with this many (a cloud lists its nodes). */
const MAX_DISCOVER = 1024;
const MAX_UNREAD_DISCOVERIES = 16;

interface Command {
  protocol: string;
  command: string;
  /** The last answer, read by readCommandResponse. */
  answer?: Uint8Array;
}

/** A HostError as the errno Taubyte's host answers for it. */
function sendErrno(err: unknown): number {
  if (!(err instanceof HostError)) return P2pErrno.sendFailed;
  if (err.code === "unbound") return P2pErrno.protocolNotFound;
  if (err.code === "not-found") return P2pErrno.commandNotFound;
  return P2pErrno.sendFailed;
}

/** [][]byte as Taubyte's codec writes it: u16 LE length, then the bytes, for each item. */
export function byteSlices(items: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(items.reduce((n, b) => n + 2 + b.length, 0));
  let at = 0;
  for (const b of items) {
    out[at] = b.length & 0xff;
    out[at + 1] = b.length >> 8;
    out.set(b, at + 2);
    at += 2 + b.length;
  }
  return out;
}

export function p2pCalls(g: GuestAccess, current: () => TaubyteCall) {
  // Ids live as long as the warm instance, and guests make a command per send (Go's Service.Command, tau's SDK):
  // the same protocol and command get the same id, so a guest serving many requests does not run out of ids.
  const commands = new Handles<Command>();
  const commandIds = new Map<string, number>();
  // Discoveries not read yet: the last few only (a guest that never reads one must not grow this).
  const discovered = new Map<number, Uint8Array>();
  let nextDiscovery = 1;
  const name = (ptr: number, len: number) => (len > MAX_NAME_BYTES ? null : g.text(ptr, len));
  const ops = (): P2pOps => {
    const o = current().host.p2p;
    if (!o) throw new HostError("unbound", "this function cannot send p2p commands on this node");
    return o;
  };

  async function send(
    c: TaubyteCall,
    id: number,
    to: string | null,
    dataPtr: number,
    dataSize: number,
    sizePtr: number,
  ) {
    const cmd = commands.get(id);
    if (!cmd) return Errno.clientNotFound;
    const data = g.bytes(dataPtr, dataSize);
    if (!data) return Errno.addressOutOfMemory;
    try {
      cmd.answer = await withinDeadline(ops().send(cmd.protocol, cmd.command, data, to));
      return g.writeU32(sizePtr, cmd.answer.length);
    } catch (err) {
      return failed(c, err, sendErrno(err));
    }
  }

  /** The protocol the cloud serves for this project (listenToProtocolSize, then listenToProtocol). */
  async function listened(c: TaubyteCall, ptr: number, len: number): Promise<Uint8Array | number> {
    const protocol = name(ptr, len);
    if (protocol === null) return Errno.addressOutOfMemory;
    const key = `listen\0${protocol}`;
    const kept = c.event.cache.get(key);
    if (kept) return kept;
    try {
      const served = encoder.encode(await withinDeadline(ops().listen(protocol)));
      c.event.cache.set(key, served);
      return served;
    } catch (err) {
      return failed(
        c,
        err,
        err instanceof HostError && err.code === "unbound" ? P2pErrno.protocolNotFound : P2pErrno.listenFailed,
      );
    }
  }

  const asyncCalls: AsyncCalls = {
    sendCommand: (id, dataPtr, dataSize, sizePtr) => send(current(), id, null, dataPtr, dataSize, sizePtr),
    sendCommandTo(id, cidPtr, dataPtr, dataSize, sizePtr) {
      const c = current();
      // The guest's CID sits at the start of a buffer of Taubyte's CID size; the memory may end before 64 bytes.
      const end = Math.min(cidPtr + CID_BUFFER_BYTES, g.mem.memory!.buffer.byteLength);
      const raw = end > cidPtr ? g.view(cidPtr, end - cidPtr) : null;
      if (!raw) return Promise.resolve(Errno.addressOutOfMemory);
      const peer = cidToPeer(raw);
      if (peer === null) return Promise.resolve(Errno.invalidCid);
      return send(c, id, peer, dataPtr, dataSize, sizePtr);
    },
    async listenToProtocolSize(ptr, len, sizePtr) {
      const served = await listened(current(), ptr, len);
      return typeof served === "number" ? served : g.writeU32(sizePtr, served.length);
    },
    async listenToProtocol(ptr, len, bufPtr, bufSize) {
      const served = await listened(current(), ptr, len);
      return typeof served === "number" ? served : g.writeOut(served, bufPtr, bufSize);
    },
    async discoverPeersSize(max, _nsTimeout, idPtr, sizePtr) {
      // The timeout is Taubyte's DHT search bound; tau's service directory answers at once, so it is not needed.
      const c = current();
      try {
        const peers = max === 0 ? [] : await withinDeadline(ops().discover(Math.min(max, MAX_DISCOVER)));
        const list = byteSlices(peers.map(peerToCid).filter((b): b is Uint8Array => b !== null));
        const id = nextDiscovery++;
        discovered.set(id, list);
        if (discovered.size > MAX_UNREAD_DISCOVERIES) discovered.delete(discovered.keys().next().value!);
        return g.writeU32(idPtr, id) || g.writeU32(sizePtr, list.length);
      } catch (err) {
        return failed(c, err, P2pErrno.discoverFailed);
      }
    },
  };

  const syncCalls: SyncCalls = {
    newCommand(protocolPtr, protocolLen, commandPtr, commandLen, idPtr) {
      const protocol = name(protocolPtr, protocolLen);
      const command = name(commandPtr, commandLen);
      if (protocol === null || command === null) return Errno.addressOutOfMemory;
      // Taubyte refuses an empty command; whether the project has the protocol is known when it is sent.
      if (!command || !protocol) return P2pErrno.commandCreateFailed;
      const key = `${protocol}\0${command}`;
      let id = commandIds.get(key);
      if (id === undefined) {
        id = commands.add({ protocol, command });
        if (id === undefined) return P2pErrno.commandCreateFailed;
        commandIds.set(key, id);
      }
      return g.writeU32(idPtr, id);
    },
    readCommandResponse(id, bufPtr, bufSize) {
      const cmd = commands.get(id);
      if (!cmd) return Errno.clientNotFound;
      if (!cmd.answer) return P2pErrno.sendFailed;
      return g.writeOut(cmd.answer, bufPtr, bufSize);
    },
    discoverPeers(id, bufPtr) {
      const list = discovered.get(id);
      if (!list) return P2pErrno.discoverFailed;
      const err = g.writeOut(list, bufPtr);
      if (!err) discovered.delete(id); // read once: the list is not kept for the instance's life
      return err;
    },
    ...p2pEventCalls(g, current),
  };
  return { sync: syncCalls, async: asyncCalls, effects: ["sendCommand", "sendCommandTo"] };
}

/** The command a p2p function runs for, and its answer (pure: the call's own input and output). */
function p2pEventCalls(g: GuestAccess, current: () => TaubyteCall): SyncCalls {
  /** The p2p event `eventId` names, or an errno. */
  const eventOf = (eventId: number) => {
    const c = current();
    if (c.event.id !== eventId) return Errno.eventNotFound;
    const e = c.call.input.event;
    return e?.kind === "p2p" ? { c, e } : P2pErrno.nilAddress;
  };
  const field = (
    what: string,
    value: (e: Extract<TaubyteCall["call"]["input"]["event"], { kind: "p2p" }>) => Uint8Array | null,
    missing: number,
  ) => {
    const get = (eventId: number): Uint8Array | number => {
      const ev = eventOf(eventId);
      if (typeof ev === "number") return ev;
      let v = ev.c.event.cache.get(what);
      if (!v) {
        const computed = value(ev.e);
        if (!computed) return missing;
        ev.c.event.cache.set(what, v = computed);
      }
      return v;
    };
    return {
      size(eventId: number, sizePtr: number): number {
        const v = get(eventId);
        return typeof v === "number" ? v : g.writeU32(sizePtr, v.length);
      },
      // Taubyte's reads take no buffer size: the guest sized its buffer with the size call (or 64 bytes for a CID).
      read(eventId: number, bufPtr: number): number {
        const v = get(eventId);
        return typeof v === "number" ? v : g.writeOut(v, bufPtr);
      },
    };
  };
  const data = field("p2p data", (e) => e.data, P2pErrno.nilAddress);
  const command = field("p2p command", (e) => encoder.encode(e.command), P2pErrno.commandNotFound);
  const protocol = field("p2p protocol", (e) => encoder.encode(e.protocol), P2pErrno.protocolNotFound);
  const from = field("p2p from", (e) => peerToCid(e.from), P2pErrno.fromNotFound);
  const to = field("p2p to", (e) => peerToCid(e.to), P2pErrno.toNotFound);
  return {
    getP2PEventDataSize: data.size,
    getP2PEventData: data.read,
    getP2PEventCommandSize: command.size,
    getP2PEventCommand: command.read,
    getP2PEventProtocolSize: protocol.size,
    getP2PEventProtocol: protocol.read,
    getP2PEventFromSize: from.size,
    getP2PEventFrom: from.read,
    getP2PEventToSize: to.size,
    getP2PEventTo: to.read,
    /** The answer, whole: a later call replaces it (Taubyte sets the response's data). */
    writeP2PResponse(eventId, bufPtr, bufSize) {
      const ev = eventOf(eventId);
      if (typeof ev === "number") return ev;
      if (!g.view(bufPtr, bufSize)) return Errno.addressOutOfMemory;
      if (bufSize > MAX_RESPONSE_BYTES) throw new OutputTooLarge();
      const call = ev.c.call;
      call.chunks.length = 0;
      call.text = "";
      call.size = 0;
      if (bufSize > 0) g.mem.copyIn(bufPtr, bufSize, call.chunks);
      call.size = bufSize;
      return Errno.none;
    },
  };
}
