/**
 * Storage and content calls (Taubyte's `storage` and `ipfs/client` packages). Storages are opened by name and
 * resolved against the storages the project binds (host/services.ts StorageOps); content is the cloud's store of
 * immutable files by CID. Opening, adding, deleting and pushing are host operations (JSPI, executors only); reading an
 * open file and writing a new content file work on bytes already in the call.
 */
import { CID } from "multiformats/cid";
import {
  type AsyncCalls,
  encoder,
  Errno,
  failed,
  fetchOnce,
  type GuestAccess,
  Handles,
  NameIds,
  nulList,
  type SyncCalls,
  type TaubyteCall,
  withinDeadline,
} from "./abi.ts";
import { HostError } from "../host/services.ts";

/** Taubyte's SDK reads a CID into a buffer of this size (go-sdk codec.CidBufferSize). */
const CID_BUFFER = 64;
const MAX_NAME_BYTES = 4096;
/** What one content file being written may hold before it is pushed. */
const MAX_CONTENT_BYTES = 32 * 1024 * 1024;

/** An open file: its bytes (read or being written) and a position. */
interface OpenFile {
  data: Uint8Array;
  chunks?: Uint8Array[];
  size: number;
  at: number;
  cid?: string;
}

export function storageCalls(g: GuestAccess, current: () => TaubyteCall) {
  const storages = new NameIds();
  const files = new Handles<OpenFile>();
  const contents = new Handles<OpenFile>();
  const store = () => {
    const s = current().host.storage;
    if (!s) throw new HostError("unbound", "this function's node serves no storages");
    return s;
  };
  const content = () => {
    const s = current().host.content;
    if (!s) throw new HostError("unbound", "this function's node serves no content store");
    return s;
  };
  const fileName = (ptr: number, len: number) => (len > MAX_NAME_BYTES ? null : g.text(ptr, len));
  /** Storage id and file name from the guest, or the errno answering the call. */
  const target = (id: number, namePtr: number, nameLen: number): { storage: string; file: string } | number => {
    const storage = storages.get(id);
    if (storage === undefined) return Errno.storageNotFound;
    const file = fileName(namePtr, nameLen);
    return file === null ? Errno.addressOutOfMemory : { storage, file };
  };
  /** A file's versions as Taubyte lists them (decimal, NUL after each), once per event for the size-then-read pair. */
  const versionList = (c: TaubyteCall, t: { storage: string; file: string }) =>
    fetchOnce(
      c,
      `versions\0${t.storage}\0${t.file}`,
      async () => nulList((await store().versions(t.storage, t.file)).map(String)),
    );
  const cidBytes = (cid: string) => CID.parse(cid).bytes;
  const readCid = (ptr: number): string | null => {
    const raw = g.view(ptr, CID_BUFFER);
    if (!raw) return null;
    try {
      return CID.decodeFirst(raw.slice())[0].toString();
    } catch {
      return null;
    }
  };
  const open = async (namePtr: number, nameLen: number, idPtr: number) => {
    const c = current();
    const name = g.text(namePtr, nameLen);
    if (name === null) return Errno.addressOutOfMemory;
    try {
      await withinDeadline(store().usage(name)); // resolves the name: "unbound" if nothing matches
    } catch (err) {
      return failed(c, err, Errno.storageNotFound);
    }
    const id = storages.add(name);
    return id === undefined ? Errno.storageNotFound : g.writeU32(idPtr, id);
  };
  const read = (f: OpenFile | undefined, buf: number, bufSize: number, countPtr: number) => {
    if (!f) return Errno.fileNameNotFound;
    const n = Math.min(bufSize, f.data.length - f.at);
    const err = g.writeOut(f.data.subarray(f.at, f.at + n), buf, n);
    if (err) return err;
    f.at += n;
    const e2 = g.writeU32(countPtr, n);
    if (e2) return e2;
    return f.at >= f.data.length ? Errno.eof : Errno.none;
  };
  const write = (f: OpenFile | undefined, buf: number, bufLen: number, writtenPtr: number) => {
    if (!f || !f.chunks) return Errno.contentNotFound;
    if (f.size + bufLen > MAX_CONTENT_BYTES) return Errno.zeroSize;
    const bytes = g.bytes(buf, bufLen);
    if (!bytes) return Errno.addressOutOfMemory;
    f.chunks.push(bytes);
    f.size += bufLen;
    return g.writeU32(writtenPtr, bufLen);
  };
  const push = async (f: OpenFile | undefined, cidPtr: number) => {
    const c = current();
    if (!f || !f.chunks) return Errno.contentNotFound;
    const all = new Uint8Array(f.size);
    let at = 0;
    for (const chunk of f.chunks) all.set(chunk, at), at += chunk.length;
    try {
      f.cid = await withinDeadline(content().add(all));
    } catch (err) {
      return failed(c, err, Errno.contentNotFound);
    }
    f.data = all;
    f.chunks = undefined;
    return g.writeOut(cidBytes(f.cid), cidPtr, CID_BUFFER);
  };
  const openCid = async (idPtr: number, cidPtr: number, into: Handles<OpenFile>) => {
    const c = current();
    const cid = readCid(cidPtr);
    if (cid === null) return Errno.invalidCid;
    let data: Uint8Array;
    try {
      data = await withinDeadline(content().cat(cid));
    } catch (err) {
      return failed(c, err, Errno.cidNotFound);
    }
    const id = into.add({ data, size: data.length, at: 0, cid });
    return id === undefined ? Errno.contentNotFound : g.writeU32(idPtr, id);
  };
  const newContent = (idPtr: number, into: Handles<OpenFile>) => {
    const id = into.add({ data: new Uint8Array(0), chunks: [], size: 0, at: 0 });
    return id === undefined ? Errno.contentNotFound : g.writeU32(idPtr, id);
  };
  const seek = (f: OpenFile | undefined, offset: bigint | number, whence: number, offsetPtr: number) => {
    if (!f) return Errno.contentNotFound;
    const base = whence === 0 ? 0 : whence === 1 ? f.at : whence === 2 ? f.data.length : -1;
    if (base < 0) return Errno.invalidWhence;
    const to = base + Number(offset);
    if (to < 0) return Errno.invalidWhence;
    f.at = to;
    return g.writeU32(offsetPtr, to);
  };
  const fileCid = (f: OpenFile | undefined, cidPtr: number) =>
    f?.cid ? g.writeOut(cidBytes(f.cid), cidPtr, CID_BUFFER) : Errno.cidNotFound;

  const asyncCalls: AsyncCalls = {
    storageNew: open,
    storageGet: open,
    async storageAddFile(id, namePtr, nameLen, versionPtr, bufPtr, bufLen, overwrite) {
      const c = current();
      const t = target(id, namePtr, nameLen);
      if (typeof t === "number") return t;
      const data = g.bytes(bufPtr, bufLen);
      if (!data) return Errno.addressOutOfMemory;
      try {
        const version = await withinDeadline(store().add(t.storage, t.file, data, overwrite !== 0));
        c.event.cache.clear(); // listings and versions read earlier in this event are stale now
        return g.writeU32(versionPtr, version);
      } catch (err) {
        return failed(c, err, Errno.addFileFailed);
      }
    },
    async storageGetFile(id, namePtr, nameLen, version, fdPtr) {
      const c = current();
      const t = target(id, namePtr, nameLen);
      if (typeof t === "number") return t;
      try {
        const data = await withinDeadline(store().get(t.storage, t.file, version));
        if (data === null) return Errno.fileNameNotFound;
        const fd = files.add({ data, size: data.length, at: 0 });
        return fd === undefined ? Errno.getFileFailed : g.writeU32(fdPtr, fd);
      } catch (err) {
        return failed(c, err, Errno.getFileFailed);
      }
    },
    async storageDeleteFile(id, namePtr, nameLen, version, all) {
      const c = current();
      const t = target(id, namePtr, nameLen);
      if (typeof t === "number") return t;
      try {
        await withinDeadline(store().delete(t.storage, t.file, version, all !== 0));
        c.event.cache.clear();
        return Errno.none;
      } catch (err) {
        return failed(c, err, Errno.deleteFileFailed);
      }
    },
    async storageListVersionsSize(id, namePtr, nameLen, sizePtr) {
      const c = current();
      const t = target(id, namePtr, nameLen);
      if (typeof t === "number") return t;
      try {
        return g.writeU32(sizePtr, (await versionList(c, t)).length);
      } catch (err) {
        return failed(c, err, Errno.listFileVersionsFailed);
      }
    },
    async storageListVersions(id, namePtr, nameLen, versionsPtr) {
      const c = current();
      const t = target(id, namePtr, nameLen);
      if (typeof t === "number") return t;
      try {
        return g.writeOut(await versionList(c, t), versionsPtr);
      } catch (err) {
        return failed(c, err, Errno.listFileVersionsFailed);
      }
    },
    storageUsedSize: (id, sizePtr) => usage(id, "used", (v) => g.writeU32(sizePtr, v.length)),
    storageUsed: (id, ptr) => usage(id, "used", (v) => g.writeOut(v, ptr)),
    storageCapacitySize: (id, sizePtr) => usage(id, "capacity", (v) => g.writeU32(sizePtr, v.length)),
    storageCapacity: (id, ptr) => usage(id, "capacity", (v) => g.writeOut(v, ptr)),
    async storageCid(id, namePtr, nameLen, cidPtr) {
      const c = current();
      const t = target(id, namePtr, nameLen);
      if (typeof t === "number") return t;
      try {
        const cid = await withinDeadline(store().cid(t.storage, t.file));
        return cid === null ? Errno.fileNameNotFound : g.writeOut(cidBytes(cid), cidPtr, CID_BUFFER);
      } catch (err) {
        return failed(c, err, Errno.cidNotFound);
      }
    },
    async storageCurrentVersionSize(id, namePtr, nameLen, sizePtr) {
      const c = current();
      const t = target(id, namePtr, nameLen);
      if (typeof t === "number") return t;
      try {
        const v = await withinDeadline(store().current(t.storage, t.file));
        if (v === null) return Errno.fileNameNotFound;
        const bytes = encoder.encode(String(v));
        // Taubyte's second call names only the file: keep the answer for it under the file name.
        c.event.cache.set(`current\0${t.file}`, bytes);
        return g.writeU32(sizePtr, bytes.length);
      } catch (err) {
        return failed(c, err, Errno.fileNameNotFound);
      }
    },
    async storageListFilesSize(id, sizePtr) {
      const c = current();
      const storage = storages.get(id);
      if (storage === undefined) return Errno.storageNotFound;
      try {
        return g.writeU32(sizePtr, (await fileList(c, storage)).length);
      } catch (err) {
        return failed(c, err, Errno.storageListFailed);
      }
    },
    async storageListFiles(id, bufPtr) {
      const c = current();
      const storage = storages.get(id);
      if (storage === undefined) return Errno.storageNotFound;
      try {
        return g.writeOut(await fileList(c, storage), bufPtr);
      } catch (err) {
        return failed(c, err, Errno.storageListFailed);
      }
    },
    storageOpenCid: (idPtr, cidPtr) => openCid(idPtr, cidPtr, contents),
    contentPushFile: (id, cidPtr) => push(contents.get(id), cidPtr),
    ipfsOpenFile: (_client, idPtr, cidPtr) => openCid(idPtr, cidPtr, contents),
    ipfsPushFile: (_client, id, cidPtr) => push(contents.get(id), cidPtr),
  };

  /** Taubyte's listing format: "/file/<name>/<version>" per file, read back by splitting on "/". */
  async function fileList(c: TaubyteCall, storage: string): Promise<Uint8Array> {
    return await fetchOnce(c, `files\0${storage}`, async () => {
      const names = await store().files(storage);
      let out = "";
      for (const name of names) out += `/file/${name}/${(await store().current(storage, name)) ?? 1}`;
      return encoder.encode(out);
    });
  }

  async function usage(id: number, which: "used" | "capacity", answer: (v: Uint8Array) => number) {
    const c = current();
    const storage = storages.get(id);
    if (storage === undefined) return Errno.storageNotFound;
    try {
      const u = await fetchOnce(
        c,
        `usage\0${storage}`,
        async () => encoder.encode(JSON.stringify(await store().usage(storage))),
      );
      const parsed = JSON.parse(new TextDecoder().decode(u)) as { used: number; capacity: number };
      return answer(encoder.encode(String(parsed[which])));
    } catch (err) {
      return failed(c, err, Errno.storageListFailed);
    }
  }

  const syncCalls: SyncCalls = {
    storageReadFile: (_id, fd, buf, bufSize, countPtr) => read(files.get(fd), buf, bufSize, countPtr),
    storageCloseFile: (_id, fd) => (files.delete(fd) ? Errno.none : Errno.closeFileFailed),
    storageCurrentVersion(namePtr, nameLen, versionPtr) {
      const name = fileName(namePtr, nameLen);
      if (name === null) return Errno.addressOutOfMemory;
      const v = current().event.cache.get(`current\0${name}`);
      return v ? g.writeOut(v, versionPtr) : Errno.fileNameNotFound;
    },
    storageNewContent: (idPtr) => newContent(idPtr, contents),
    contentCloseFile: (id) => (contents.delete(id) ? Errno.none : Errno.contentNotFound),
    contentFileCid: (id, cidPtr) => fileCid(contents.get(id), cidPtr),
    contentReadFile: (id, buf, bufLen, countPtr) => read(contents.get(id), buf, bufLen, countPtr),
    contentWriteFile: (id, buf, bufLen, writePtr) => write(contents.get(id), buf, bufLen, writePtr),
    contentSeekFile: (id, offset, whence, offsetPtr) => seek(contents.get(id), offset, whence, offsetPtr),
    newIpfsClient: (clientIdPtr) => g.writeU32(clientIdPtr, 1),
    ipfsNewContent: (_client, idPtr) => newContent(idPtr, contents),
    ipfsCloseFile: (_client, id) => (contents.delete(id) ? Errno.none : Errno.contentNotFound),
    ipfsFileCid: (_client, id, cidPtr) => fileCid(contents.get(id), cidPtr),
    ipfsReadFile: (_client, id, buf, bufLen, countPtr) => read(contents.get(id), buf, bufLen, countPtr),
    ipfsWriteFile: (_client, id, buf, bufLen, writePtr) => write(contents.get(id), buf, bufLen, writePtr),
    ipfsSeekFile: (_client, id, offset, whence, offsetPtr) => seek(contents.get(id), offset, whence, offsetPtr),
  };
  return {
    sync: syncCalls,
    async: asyncCalls,
    effects: ["storageAddFile", "storageDeleteFile", "contentPushFile", "ipfsPushFile"],
  };
}
