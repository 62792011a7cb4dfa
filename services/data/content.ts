/**
 * The content store as functions see it: immutable bytes by CID. What a function adds is pinned for its project
 * (services/hoarder/pins.ts) so that on a cloud the hoarder nodes keep it, whichever node ran the function; there is
 * no call to remove it, so it stays until the pin is removed by hand (`["hoarder","objects",cid,"content",project,
 * functionId]` in the user-data store).
 */
import { CID } from "multiformats/cid";
import { TauError } from "../../runtime/errors.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import { type ContentOps, HostError } from "../../runtime/wasm/host/services.ts";
import { type ObjectPin, objectPinKey } from "../hoarder/pins.ts";
import type { StateStore } from "../kvdb/mod.ts";
import { checkBytes } from "./limits.ts";
import type { FunctionData } from "./records.ts";

export function contentOps(
  content: ContentStore,
  store: StateStore,
  fn: Pick<FunctionData, "project" | "functionId">,
): ContentOps {
  return {
    async add(data) {
      const cid = await content.addBytes(checkBytes("content", data));
      await store.set(
        objectPinKey(cid, "content", fn.project, fn.functionId),
        { what: `content added by function ${fn.functionId}`, project: fn.project } satisfies ObjectPin,
      );
      return cid;
    },
    async cat(cid) {
      if (typeof cid !== "string") throw new HostError("invalid", "a CID must be text");
      try {
        CID.parse(cid);
      } catch {
        throw new HostError("invalid", `"${cid.slice(0, 100)}" is not a CID`);
      }
      try {
        return await content.cat(cid);
      } catch (err) {
        // 404: not in this node's store; 503: a cloud node found it neither here nor on a peer in time. Either way
        // nobody could give it: the guest learns it is not there, the log gets which.
        if (err instanceof TauError && (err.status === 404 || err.status === 503)) {
          throw new HostError("not-found", err.message);
        }
        throw err;
      }
    },
  };
}
