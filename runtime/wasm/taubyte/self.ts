/**
 * `self` and `crypto` calls: who is running (project, application, function id, branch, commit) and random bytes.
 * Pure, so they run inline; the values are fixed for the call (set by the gateway from the deployment).
 */
import { encoder, Errno, type GuestAccess, type SyncCalls, type TaubyteCall } from "./abi.ts";
import type { SelfInfo } from "../host/services.ts";

/** crypto.getRandomValues fills at most this many bytes per call (Web Crypto's limit). */
const RANDOM_CHUNK = 65536;
/** One cryptoRead call fills at most this much; the Go reader asks again for the rest. */
const MAX_RANDOM_READ = 1 << 20;

export function selfCalls(g: GuestAccess, current: () => TaubyteCall): SyncCalls {
  const field = (pick: (s: SelfInfo) => string) => ({
    size: (sizePtr: number) => g.writeU32(sizePtr, encoder.encode(pick(current().self)).length),
    read: (ptr: number) => g.writeOut(encoder.encode(pick(current().self)), ptr),
  });
  const app = field((s) => s.application);
  const project = field((s) => s.project);
  const id = field((s) => s.id);
  const commit = field((s) => s.commit);
  const branch = field((s) => s.branch);
  return {
    selfApplicationSize: app.size,
    selfApplication: app.read,
    selfProjectSize: project.size,
    selfProject: project.read,
    selfIdSize: id.size,
    selfId: id.read,
    selfCommitSize: commit.size,
    selfCommit: commit.read,
    selfBranchSize: branch.size,
    selfBranch: branch.read,
    cryptoRead(bufPtr: number, bufLen: number, readPtr: number): number {
      const n = Math.min(bufLen, MAX_RANDOM_READ);
      const out = g.view(bufPtr, n);
      if (!out) return Errno.addressOutOfMemory;
      for (let at = 0; at < n; at += RANDOM_CHUNK) crypto.getRandomValues(out.subarray(at, at + RANDOM_CHUNK));
      return g.writeU64(readPtr, n);
    },
  };
}
