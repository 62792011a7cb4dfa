/**
 * The hoarder on a node whose shape runs it. Every PASS_MS it compares what the cloud wants kept (pins.ts) with
 * where placement puts each CID (placement.ts) and what the replicated store says each node holds, then:
 *   - takes what is placed here and not held: the whole DAG, missing blocks fetched from peers (bitswap);
 *   - drops what is held here but placed elsewhere, once every node it is placed on holds it (a node back from a
 *     long absence takes its CIDs back, and the node that stood in for it drops them by this same rule);
 *   - releases what no kept deployment needs: drops it and sweeps its blocks, keeping any block a held DAG shares.
 * Local bookkeeping (this node's Deno KV): ["hoarder","held",cid] (whole DAG here) and ["hoarder","seen",cid] (was
 * wanted once, so its blocks are swept when it is released, also from nodes that never held it, like the builder).
 * Deleting blocks is this explicit sweep, not Helia's GC: GC deletes every unpinned block, including those of a build
 * in progress that nothing has claimed yet.
 */
import type { ContentStore } from "../../runtime/storage/helia.ts";
import type { StateStore } from "../kvdb/mod.ts";
import { DEAD_AFTER_MS, type Directory } from "../p2p/directory.ts";
import type { Libp2pNode } from "../p2p/node.ts";
import { protocolOf, type RpcRequest, type RpcResponse, serveRpc } from "../p2p/rpc.ts";
import type { DeploymentRecord } from "../tns/records.ts";
import { TauError } from "../../runtime/errors.ts";
import { type Copy, copyKey, listCopies, type Wanted, wantedCids } from "./pins.ts";
import { aliveHoarders, candidates, placement } from "./placement.ts";
import type { HoarderSettings } from "./settings.ts";

export const HOARDER_SERVICE = "hoarder";
const PASS_MS = 2_000;
/** A pass whose inputs (store fingerprint, live nodes, local copies) did not change is skipped, up to this long. */
const FULL_PASS_MS = 30_000;
/** No pass before the directory has heard every live node: a restarted node must not think it is alone. */
const SETTLE_MS = DEAD_AFTER_MS;
/** A CID taken for a publish is kept this long even before (or without) a deployment wanting it. */
const TAKE_HOLD_MS = 10 * 60_000;
/** Background takes (re-replication) at once, and how long each may wait for peers. */
const TAKES_AT_ONCE = 3;
const TAKE_TIMEOUT_MS = 60_000;
const RPC_TAKES_AT_ONCE = 4;

export interface KeeperDeps {
  peer: string;
  state: StateStore;
  /** Where functions' object pins live (the user-data store, services/data/store.ts); default `state`. */
  objects?: StateStore;
  store: ContentStore;
  kv: Deno.Kv;
  directory: Directory;
  libp2p: Libp2pNode;
  readRecord: (cid: string) => Promise<DeploymentRecord>;
  settings: HoarderSettings;
  log: (line: string) => void;
}

export interface WantedView extends Wanted {
  placement: string[];
  holders: string[];
}

const short = (peer: string) => peer.slice(-6);
const mib = (n: number) => `${(n / 1048576).toFixed(n < 1048576 ? 2 : 1)} MiB`;

export class Keeper {
  readonly #d: KeeperDeps;
  readonly #held = new Map<string, Copy>();
  readonly #seen = new Set<string>();
  readonly #taking = new Map<string, Promise<Copy>>();
  /** Block lists of held DAGs (immutable, so computed once). */
  readonly #blocks = new Map<string, string[]>();
  readonly #toSweep = new Set<string>();
  #queue: string[] = [];
  #running = 0;
  #timer?: ReturnType<typeof setInterval>;
  #startedAt = Date.now();
  #passing?: Promise<void>;
  #lastInputs = "";
  #lastPass = 0;
  #lastError = "";
  view: { at: number; wanted: WantedView[]; problems: string[] } = { at: 0, wanted: [], problems: [] };

  private constructor(deps: KeeperDeps) {
    this.#d = deps;
  }

  static async start(deps: KeeperDeps): Promise<Keeper> {
    const k = new Keeper(deps);
    for await (const e of deps.kv.list<Copy>({ prefix: ["hoarder", "held"] })) {
      // A kill -9 in the middle of a take leaves no held entry (it is written after the walk); a block lost since
      // (disk trouble) is found here and the CID taken again when a pass places it.
      const cid = e.key[2] as string;
      if (await deps.store.has(cid)) k.#held.set(cid, e.value);
      else await deps.kv.delete(e.key);
    }
    for await (const e of deps.kv.list({ prefix: ["hoarder", "seen"] })) k.#seen.add(e.key[2] as string);
    await serveRpc(deps.libp2p, HOARDER_SERVICE, (req) => k.#serve(req));
    const timer = setInterval(() => k.pass(), PASS_MS);
    Deno.unrefTimer(timer);
    k.#timer = timer;
    return k;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#d.libp2p.unhandle(protocolOf(HOARDER_SERVICE)).catch(() => {});
    await this.#passing;
  }

  held(): { cid: string; at: number; blocks: number }[] {
    return [...this.#held].map(([cid, c]) => ({ cid, ...c })).sort((a, b) => a.cid.localeCompare(b.cid));
  }

  /** Hold the whole DAG under `cid` (fetching what is missing); resolves once held and recorded. */
  take(cid: string, timeoutMs = TAKE_TIMEOUT_MS): Promise<Copy> {
    const held = this.#held.get(cid);
    if (held) return Promise.resolve(held);
    let pending = this.#taking.get(cid);
    if (!pending) {
      pending = this.#fetch(cid, timeoutMs).finally(() => this.#taking.delete(cid));
      this.#taking.set(cid, pending);
    }
    return pending;
  }

  async #fetch(cid: string, timeoutMs: number): Promise<Copy> {
    const started = performance.now();
    const got = await this.#d.store.fetchDag(cid, { signal: AbortSignal.timeout(timeoutMs) });
    const copy: Copy = { at: Date.now(), blocks: got.blocks };
    this.#held.set(cid, copy);
    this.#toSweep.delete(cid);
    await this.#d.kv.set(["hoarder", "held", cid], copy);
    // Not awaited: the write waits for replicas to acknowledge (up to 3 s for one that hangs), and the caller of a
    // take needs to know the copy exists here, which it now does; a pass re-records it if the write was lost.
    this.#advertise(cid, copy);
    if (got.fetchedBytes > 0) {
      this.#d.log(
        `hoarder: now holding ${cid} (${got.blocks} blocks, ${mib(got.fetchedBytes)} from peers in ${
          Math.round(performance.now() - started)
        } ms)`,
      );
    }
    return copy;
  }

  async #advertise(cid: string, copy: Copy): Promise<void> {
    await this.#d.state.set(copyKey(cid, this.#d.peer), copy).catch((err) =>
      this.#d.log(`hoarder: cannot record the copy of ${cid}: ${(err as Error).message}`)
    );
  }

  async #serve(req: RpcRequest): Promise<RpcResponse> {
    if (req.method !== "take") throw new TauError(`hoarder has no method ${req.method}`, { status: 400 });
    const { cids, timeoutMs } = req.params as { cids: string[]; timeoutMs?: number };
    if (!Array.isArray(cids) || cids.some((c) => typeof c !== "string")) {
      throw new TauError("take needs cids: a list of CIDs", { status: 400 });
    }
    const held: string[] = [];
    const failed: { cid: string; error: string }[] = [];
    const todo = [...cids];
    await Promise.all(Array.from({ length: Math.min(RPC_TAKES_AT_ONCE, todo.length) }, async () => {
      while (todo.length) {
        const cid = todo.shift()!;
        try {
          await this.take(cid, timeoutMs);
          held.push(cid);
        } catch (err) {
          failed.push({ cid, error: (err as Error).message });
        }
      }
    }));
    return { result: { held, failed } };
  }

  /** One reconcile pass (passes never overlap; a forced call during one runs another after it). */
  async pass(force = false): Promise<void> {
    if (force && this.#passing) await this.#passing;
    this.#passing ??= this.#pass(force)
      .then(() => {
        this.#lastError = "";
      }, (err) => {
        // Once per distinct failure, not every PASS_MS (a node without a reachable tns node fails each pass).
        const message = (err as Error).message;
        if (message !== this.#lastError) this.#d.log(`hoarder: pass failed: ${message}`);
        this.#lastError = message;
      })
      .finally(() => (this.#passing = undefined));
    return this.#passing;
  }

  async #pass(force: boolean): Promise<void> {
    const d = this.#d;
    const now = Date.now();
    if (now - this.#startedAt < SETTLE_MS) return;
    const entries = d.directory.list();
    const eligible = candidates(entries, d.settings.graceMs, now);
    const alive = new Set(aliveHoarders(entries));
    const inputs = [
      await d.state.fingerprint(),
      await d.objects?.fingerprint(),
      eligible.join(),
      [...alive].join(),
      this.#held.size,
      this.#taking.size,
      this.#queue.length,
      this.#toSweep.size,
    ].join("|");
    if (!force && inputs === this.#lastInputs && now - this.#lastPass < FULL_PASS_MS) return;
    this.#lastInputs = inputs;
    this.#lastPass = now;

    const { wanted, complete, problems } = await wantedCids(d.state, d.settings.keep, d.readRecord, d.objects);
    const copies = await listCopies(d.state);
    const self = d.peer;
    // What the store says of this node is what it holds.
    for (const [cid, copy] of this.#held) if (!copies.get(cid)?.has(self)) await this.#advertise(cid, copy);
    for (const [cid, peers] of copies) {
      if (peers.has(self) && !this.#held.has(cid) && !this.#taking.has(cid)) await d.state.delete(copyKey(cid, self));
    }

    const drops: string[] = [];
    const view: WantedView[] = [];
    for (const [cid, w] of wanted) {
      if (!this.#seen.has(cid)) {
        this.#seen.add(cid);
        await d.kv.set(["hoarder", "seen", cid], true);
      }
      const placed = await placement(cid, eligible, d.settings.copies);
      const holders = [...(copies.get(cid) ?? [])].sort();
      view.push({ ...w, placement: placed, holders });
      if (placed.includes(self)) {
        if (!this.#held.has(cid) && !this.#taking.has(cid) && !this.#queue.includes(cid)) this.#queue.push(cid);
      } else if (this.#held.has(cid) && placed.every((p) => alive.has(p) && copies.get(cid)?.has(p))) {
        drops.push(cid);
        d.log(`hoarder: dropping ${cid} (${w.what}): placed on ${placed.map(short).join(", ")}, which hold it`);
      }
    }
    // Releasing needs the whole picture: with one record unreadable, something wanted could look unwanted.
    if (complete) {
      // Held and not wanted: released, if a kept deployment once wanted it; a copy taken for a publish that has not
      // recorded its deployment yet (or failed) is kept for TAKE_HOLD_MS first.
      for (const [cid, copy] of this.#held) {
        if (!wanted.has(cid) && (this.#seen.has(cid) || now - copy.at > TAKE_HOLD_MS)) {
          drops.push(cid);
          d.log(`hoarder: releasing ${cid}: no kept deployment needs it`);
        }
      }
      for (const cid of this.#seen) {
        if (wanted.has(cid)) continue;
        this.#toSweep.add(cid);
        this.#seen.delete(cid);
        await d.kv.delete(["hoarder", "seen", cid]);
      }
      // Copies recorded by nodes gone for longer than the grace period, of CIDs nobody wants: nobody else cleans them.
      for (const [cid, peers] of copies) {
        if (wanted.has(cid)) continue;
        for (const p of peers) if (p !== self && !eligible.includes(p)) await d.state.delete(copyKey(cid, p));
      }
    } else {
      for (const p of problems) d.log(`hoarder: releasing nothing this pass: ${p}`);
    }
    for (const cid of drops) {
      await d.state.delete(copyKey(cid, self));
      this.#held.delete(cid);
      this.#blocks.delete(cid);
      await d.kv.delete(["hoarder", "held", cid]);
      this.#toSweep.add(cid);
    }
    this.view = { at: now, wanted: view, problems };
    this.#pump();
    // A take in progress may be fetching blocks a swept DAG shares: sweep once none is.
    if (this.#toSweep.size && this.#taking.size === 0) await this.#sweep();
  }

  #pump(): void {
    while (this.#running < TAKES_AT_ONCE && this.#queue.length) {
      const cid = this.#queue.shift()!;
      this.#running++;
      this.take(cid)
        .catch((err) => this.#d.log(`hoarder: cannot take ${cid} yet: ${(err as Error).message}`))
        .finally(() => {
          this.#running--;
          this.#pump();
        });
    }
  }

  async #sweep(): Promise<void> {
    const live = new Set<string>();
    for (const cid of this.#held.keys()) {
      let blocks = this.#blocks.get(cid);
      if (!blocks) this.#blocks.set(cid, blocks = await this.#d.store.localBlocks(cid));
      for (const b of blocks) live.add(b);
    }
    const roots = [...this.#toSweep].filter((cid) => !this.#held.has(cid));
    this.#toSweep.clear();
    let freed = 0;
    for (const root of roots) {
      const blocks = await this.#d.store.localBlocks(root);
      freed += await this.#d.store.deleteBlocks(blocks.filter((b) => !live.has(b)));
    }
    if (freed) this.#d.log(`hoarder: swept ${roots.length} DAG(s) no longer kept here: ${freed} blocks freed`);
  }
}
