/**
 * The user-data store: where functions' databases, storage records, globals and object pins live. It is a second
 * replicated store of the same kind as the control state (services/kvdb), in the same Deno KV file under its own
 * root ("userdata"), so user data never mixes with deployment pointers and its growth never slows their scans.
 *
 * On a cloud it is replicated among the hoarder nodes (RPC service USERDATA_SERVICE), not the tns nodes: hoarder
 * nodes are the ones provisioned to keep data, and they need it themselves (the keepers read the object pins). Each
 * hoarder node holds a whole replica, so the data survives the loss of any one of them; a node that runs no hoarder
 * reads and writes through a live hoarder node, failing over to the next. No change events cross nodes: nothing
 * caches user data.
 *
 * How a node opens it (services/node.ts, next to the control state):
 *   const userData = await openUserDataStore({ kv, writer: opts.shape?.identity.peerId ?? "local", cluster, log });
 *   // bindFunctionData({ store: userData.store, content: store }, fn) per function  (bindings.ts)
 *   // Hoarder.start({ ..., objects: userData.store })  so the keepers keep stored objects
 *   // on shutdown: userData.stop()
 */
import { RemoteStore, ReplicaStore, type StateStore } from "../kvdb/mod.ts";
import { Kvdb } from "../kvdb/store.ts";
import type { Cluster } from "../cluster/cluster.ts";

/** The Deno KV root of user data, next to the control state's "kvdb". */
export const USERDATA_ROOT = "userdata";
/** The RPC service replicas of user data answer on (`/tau/userdata/1.0.0`). */
export const USERDATA_SERVICE = "userdata";
/** The nodes holding user-data replicas: those whose shape runs hoarder. */
export const USERDATA_HOLDERS = "hoarder";

export interface UserDataStore {
  store: StateStore;
  /** The local replica, when this node holds one (tau dev, or a hoarder node). */
  db?: Kvdb;
  stop(): void;
}

export async function openUserDataStore(opts: {
  kv: Deno.Kv;
  /** This node's id in versions: its peer id, "local" for tau dev (as for the control state). */
  writer: string;
  cluster?: Cluster;
  log?: (line: string) => void;
}): Promise<UserDataStore> {
  const { cluster } = opts;
  if (!cluster) {
    const db = await Kvdb.open({ kv: opts.kv, writer: opts.writer, root: USERDATA_ROOT });
    return { store: new ReplicaStore(db), db, stop() {} };
  }
  if (cluster.config.services.includes(USERDATA_HOLDERS)) {
    const db = await Kvdb.open({ kv: opts.kv, writer: opts.writer, root: USERDATA_ROOT });
    const store = new ReplicaStore(db);
    // Loaded only here: replication needs libp2p RPC, which `tau dev` never loads.
    const { startReplicator } = await import("../kvdb/replicate.ts");
    const replicator = await startReplicator({
      db,
      libp2p: cluster.p2p.libp2p,
      rpc: cluster.rpc,
      directory: cluster.directory,
      log: opts.log,
      service: USERDATA_SERVICE,
      replicaService: USERDATA_HOLDERS,
    });
    store.attach(replicator);
    return { store, db, stop: () => replicator.stop() };
  }
  const store = new RemoteStore(cluster.rpc, cluster.directory, {
    service: USERDATA_SERVICE,
    replicaService: USERDATA_HOLDERS,
  });
  return { store, stop() {} };
}
