/**
 * Hoarder: every CID a kept deployment needs (its record, function modules, website trees, build log) lives on
 * `copies` nodes running hoarder, chosen by rendezvous hashing (placement.ts). This module is the part every node of
 * a cloud has: the rollout's wait for copies before a flip (publish and rollback), and the build-log hook. A node
 * whose shape runs hoarder also runs the keeper (keeper.ts), which takes, drops and sweeps.
 *
 * A publish waits until PUBLISH_COPIES nodes hold the content (or every hoarder node, when the cloud has fewer), at
 * most `publish-timeout`; it asks the placement's nodes at once, the next in rank when one fails, and leaves the
 * remaining copies to finish in the background.
 * Container images are not here: each substrate node imports and extracts its own (services/substrate/images.ts).
 */
import { TauError } from "../../runtime/errors.ts";
import type { ContentStore } from "../../runtime/storage/helia.ts";
import type { Cluster } from "../cluster/cluster.ts";
import type { StateStore } from "../kvdb/mod.ts";
import type { Job } from "../patrick/jobs.ts";
import type { ContentKeeper } from "../rollout/rollout.ts";
import type { DeploymentRecord, DeploymentRef } from "../tns/records.ts";
import type { Tns } from "../tns/tns.ts";
import { HOARDER_SERVICE, Keeper, type WantedView } from "./keeper.ts";
import { contentOf, type Copy, listCopies, type PinItem, type PinSet, pinSetOf, pinsKey } from "./pins.ts";
import { aliveHoarders, candidates, rank } from "./placement.ts";
import { type HoarderSettings, PUBLISH_COPIES } from "./settings.ts";

export interface HoarderStatus {
  peer: string;
  /** Whether this node keeps copies (its shape runs hoarder). */
  keeps: boolean;
  settings: HoarderSettings;
  held: { cid: string; at: number; blocks: number }[];
  /** This node's view at its last pass: each wanted CID, where it is placed, who holds it. */
  wanted: WantedView[];
  passAt: number;
}

export interface HoarderDeps {
  cluster: Cluster;
  state: StateStore;
  /** The user-data store (services/data/store.ts): what functions stored is kept too; default `state`. */
  objects?: StateStore;
  store: ContentStore;
  kv: Deno.Kv;
  tns: Tns;
  settings: HoarderSettings;
  /** The node's shape runs hoarder: it keeps copies. */
  keeps: boolean;
  log?: (line: string) => void;
}

const short = (peer: string) => `…${peer.slice(-6)}`;

/** How long a publish waits before asking a peer again after its ask failed. */
const RETRY_AFTER_MS = 500;

export class Hoarder implements ContentKeeper {
  readonly #d: HoarderDeps;
  readonly settings: HoarderSettings;
  readonly keeper?: Keeper;
  readonly #peer: string;

  private constructor(deps: HoarderDeps, settings: HoarderSettings, keeper?: Keeper) {
    this.#d = deps;
    this.settings = settings;
    this.keeper = keeper;
    this.#peer = deps.cluster.p2p.peerId;
  }

  static async start(deps: HoarderDeps): Promise<Hoarder> {
    const settings = deps.settings;
    const keeper = deps.keeps
      ? await Keeper.start({
        peer: deps.cluster.p2p.peerId,
        state: deps.state,
        objects: deps.objects,
        store: deps.store,
        kv: deps.kv,
        directory: deps.cluster.directory,
        libp2p: deps.cluster.p2p.libp2p,
        readRecord: (cid) => deps.tns.record(cid),
        settings,
        log: deps.log ?? ((line) => console.error(line)),
      })
      : undefined;
    return new Hoarder(deps, settings, keeper);
  }

  async stop(): Promise<void> {
    await this.keeper?.stop();
  }

  /** Before TNS records a new deployment: its modules and website trees have their copies. */
  async secureContent(record: DeploymentRecord, log?: (line: string) => void): Promise<void> {
    await this.#secure(contentOf(record), log);
  }

  /**
   * Before a flip (publish or rollback): what the deployment pins is recorded, and all of it has its copies. A
   * deployment whose content was released (older than what is kept) fails here at once, before anything moves.
   */
  async secureDeployment(
    project: string,
    branch: string,
    ref: DeploymentRef,
    log?: (line: string) => void,
  ): Promise<void> {
    const key = pinsKey(project, branch, ref.id);
    let pins = await this.#d.state.get<PinSet>(key);
    if (!pins) {
      await this.#assertKept(project, branch, ref, [{ cid: ref.cid, what: "record" }]);
      pins = pinSetOf(ref, await this.#d.tns.record(ref.cid));
      await this.#d.state.set(key, pins);
    }
    await this.#assertKept(project, branch, ref, pins.items);
    const copies = await listCopies(this.#d.state);
    const alive = new Set(aliveHoarders(this.#d.cluster.directory.list()));
    const need = Math.min(PUBLISH_COPIES, alive.size);
    const held = (cid: string) => [...(copies.get(cid) ?? [])].filter((p) => alive.has(p)).length;
    const lacking = pins.items.filter((i) => held(i.cid) < need);
    // The keepers may have taken the record on their own before it was asked for: say so, so the build log always
    // tells how many copies the record has.
    const record = pins.items.find((i) => i.cid === ref.cid);
    if (record && held(record.cid) >= need) log?.(`hoarder: record: ${held(record.cid)} copies, held already`);
    await this.#secure(lacking, log);
  }

  /** patrick's hook: a finished job's log joins what its deployment pins (the keepers take it on their next pass). */
  async logStored(job: Job): Promise<void> {
    if (!job.deployment || !job.logCid) return;
    const key = pinsKey(job.project, job.branch, job.deployment.id);
    const pins = await this.#d.state.get<PinSet>(key);
    if (!pins || pins.items.some((i) => i.cid === job.logCid)) return;
    await this.#d.state.set(key, { items: [...pins.items, { cid: job.logCid, what: "build log" }] } satisfies PinSet);
  }

  status(): HoarderStatus {
    return {
      peer: this.#peer,
      keeps: this.keeper !== undefined,
      settings: this.settings,
      held: this.keeper?.held() ?? [],
      wanted: this.keeper?.view.wanted ?? [],
      passAt: this.keeper?.view.at ?? 0,
    };
  }

  /** Every item is here in full or held by a live node; otherwise it was released. */
  async #assertKept(project: string, branch: string, ref: DeploymentRef, items: PinItem[]): Promise<void> {
    const copies = await listCopies(this.#d.state);
    const alive = new Set(this.#d.cluster.directory.list().filter((e) => e.alive).map((e) => e.peer));
    const gone: PinItem[] = [];
    for (const item of items) {
      if ([...(copies.get(item.cid) ?? [])].some((p) => alive.has(p))) continue;
      if (!(await this.#d.store.has(item.cid))) gone.push(item);
    }
    if (gone.length === 0) return;
    throw new TauError(
      `deployment ${ref.id} of ${project}/${branch} is no longer kept: its ${gone.map((g) => g.what).join(", ")} ${
        gone.length > 1 ? "were" : "was"
      } released`,
      {
        status: 409,
        hint: `the cloud keeps each branch's current deployment and its last ${this.settings.keep}; ` +
          `push commit ${ref.commit.slice(0, 12)} again to rebuild it`,
      },
    );
  }

  /** Wait until every item is held by enough hoarder nodes; throws when the bounded wait ends short. */
  async #secure(items: PinItem[], log?: (line: string) => void): Promise<void> {
    if (items.length === 0) return;
    const entries = this.#d.cluster.directory.list();
    const eligible = candidates(entries, this.settings.graceMs);
    if (eligible.length === 0) {
      log?.("hoarder: no node of this cloud runs hoarder: the content is kept only where it was built");
      return;
    }
    const need = Math.min(PUBLISH_COPIES, eligible.length);
    const alive = aliveHoarders(entries);
    const started = performance.now();
    const timeoutMs = this.settings.publishTimeoutMs;
    let want = Math.min(this.settings.copies, alive.length);
    const progress = new Map<string, { order: string[]; tried: Set<string>; done: Set<string>; asking: number }>();
    for (const item of items) {
      progress.set(item.cid, { order: await rank(item.cid, alive), tried: new Set(), done: new Set(), asking: 0 });
    }
    const errors: string[] = [];
    const pending = new Set<Promise<void>>();
    const deadline = AbortSignal.timeout(timeoutMs);
    const expired = new Promise<void>((resolve) => deadline.addEventListener("abort", () => resolve()));
    // A peer whose ask failed (a stale connection to a node just back from a pause, say) is asked again once a
    // moment has passed, while the deadline allows: not at once, so a peer that fails fast is not hammered.
    const retryAt = new Map<string, number>();
    const launch = () => {
      const batches = new Map<string, string[]>();
      for (const [cid, p] of progress) {
        let more = want - p.done.size - p.asking;
        for (const peer of p.order) {
          if (more <= 0) break;
          if (p.tried.has(peer) || (retryAt.get(peer) ?? 0) > performance.now()) continue;
          p.tried.add(peer);
          p.asking++;
          more--;
          batches.set(peer, [...(batches.get(peer) ?? []), cid]);
        }
      }
      for (const [peer, cids] of batches) {
        const call: Promise<void> = this.#ask(peer, cids, timeoutMs, deadline).then((r) => {
          for (const cid of r.held) progress.get(cid)!.done.add(peer);
          for (const f of r.failed) {
            errors.push(`${short(peer)}: ${f.cid}: ${f.error}`);
            progress.get(f.cid)!.tried.delete(peer);
            retryAt.set(peer, performance.now() + RETRY_AFTER_MS);
          }
        }, (err) => {
          errors.push(`${short(peer)}: ${(err as Error).message}`);
          retryAt.set(peer, performance.now() + RETRY_AFTER_MS);
          for (const cid of cids) progress.get(cid)!.tried.delete(peer);
        }).finally(() => {
          for (const cid of cids) progress.get(cid)!.asking--;
          pending.delete(call);
        });
        pending.add(call);
      }
    };
    const enough = () => [...progress.values()].every((p) => p.done.size >= need);
    // A hoarder that is eligible (inside its grace period) but not heard from lately may be back any moment (a
    // restart, a pause): with nothing in flight, look again at who is alive until the deadline.
    const refresh = async () => {
      const now = aliveHoarders(this.#d.cluster.directory.list());
      want = Math.max(want, Math.min(this.settings.copies, now.length));
      for (const item of items) progress.get(item.cid)!.order = await rank(item.cid, now);
    };
    launch();
    while (!enough() && !deadline.aborted) {
      if (pending.size > 0) await Promise.race([...pending, expired]);
      else {
        await Promise.race([new Promise((r) => setTimeout(r, 250)), expired]);
        await refresh();
      }
      launch();
    }
    const whats = items.map((i) => i.what).join(", ");
    const ms = Math.round(performance.now() - started);
    if (enough()) {
      const holders = new Set([...progress.values()].flatMap((p) => [...p.done]));
      const fewest = Math.min(...[...progress.values()].map((p) => p.done.size));
      const rest = want > fewest ? `; ${want - fewest} more follow` : "";
      log?.(
        `hoarder: ${whats}: ${fewest} copies (on ${[...holders].map(short).join(", ")}) in ${ms} ms${rest}`,
      );
      return;
    }
    const fewest = Math.min(...[...progress.values()].map((p) => p.done.size));
    throw new TauError(
      `hoarder: ${whats}: only ${fewest} of the ${need} copies a deployment needs after ${(ms / 1000).toFixed(1)} s`,
      {
        status: 503,
        hint: "tau nodes lists the hoarder nodes and whether they answer; push again once they do",
        detail: errors.join("\n") || undefined,
      },
    );
  }

  async #ask(peer: string, cids: string[], timeoutMs: number, signal: AbortSignal) {
    if (peer === this.#peer && this.keeper) {
      const keeper = this.keeper;
      const held: string[] = [];
      const failed: { cid: string; error: string }[] = [];
      await Promise.all(
        cids.map((cid) =>
          keeper.take(cid, timeoutMs).then(() => held.push(cid), (err) => failed.push({ cid, error: err.message }))
        ),
      );
      return { held, failed };
    }
    const { result } = await this.#d.cluster.rpc.call(peer, HOARDER_SERVICE, "take", { cids, timeoutMs }, {
      signal,
      timeoutMs: timeoutMs + 1000,
    });
    return result as { held: string[]; failed: { cid: string; error: string }[] };
  }
}

export type { Copy };
