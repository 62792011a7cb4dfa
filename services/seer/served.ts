/**
 * The FQDNs TNS serves, kept in memory for seer so that a query never waits on TNS (on a node without a replica
 * every TNS read is a round trip to a tns node). Rebuilt after every flip or ownership change TNS reports, wherever it
 * was made; on a node without a replica that event comes from the TNS events topic or, when one was missed, from the
 * 5 s fingerprint check (services/cluster/state.ts). So a new or removed name shows in DNS within that bound plus one
 * rebuild (a few TNS reads per project); a rebuild that fails keeps the last good set and is retried.
 */
import type { Tns } from "../tns/tns.ts";
import { fqdnsOf } from "../tns/records.ts";
import { normalize } from "./zone.ts";

/** A rebuild that takes longer than this (TNS unreachable, a record's content not found) is abandoned and retried. */
const REBUILD_TIMEOUT_MS = 10_000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 5_000;
/** Events arriving together (one deploy writes several keys) make one rebuild. */
const COALESCE_MS = 20;

export type ServedSource = Pick<Tns, "onFlip" | "servedRecords" | "resolveHost">;

export class ServedNames {
  #names = new Set<string>();
  #ancestors = new Set<string>();
  #serial = Math.floor(Date.now() / 1000);
  #dirty = false;
  #running?: Promise<void>;
  #timer?: ReturnType<typeof setTimeout>;
  #retryMs = RETRY_MIN_MS;
  #stopped = false;
  #off?: () => void;
  /** Bumped by every rebuild: one abandoned at its timeout must not apply what it read late. */
  #generation = 0;
  #lastError?: string;

  constructor(private readonly tns: ServedSource, private readonly log: (line: string) => void = () => {}) {}

  /** Starts following TNS; resolves after the first rebuild (or its first failure: queries answer from empty). */
  async start(): Promise<void> {
    this.#off = this.tns.onFlip(() => this.#schedule(COALESCE_MS));
    this.#dirty = true;
    await this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#off?.();
    clearTimeout(this.#timer);
  }

  has(fqdn: string): boolean {
    return this.#names.has(fqdn);
  }

  /** A served name lies strictly below `name`. */
  hasBelow(name: string): boolean {
    return this.#ancestors.has(name);
  }

  /** Seconds since 1970 of the last change of the set (the SOA serial). */
  serial(): number {
    return this.#serial >>> 0;
  }

  list(): string[] {
    return [...this.#names].sort();
  }

  /** Wait for any rebuild in progress (tests). */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  #schedule(ms: number): void {
    this.#dirty = true;
    if (this.#stopped || this.#timer || this.#running) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, ms);
    Deno.unrefTimer(this.#timer);
  }

  async #run(): Promise<void> {
    if (this.#running) return await this.#running;
    this.#running = (async () => {
      while (this.#dirty && !this.#stopped) {
        this.#dirty = false;
        try {
          await this.#rebuild();
          this.#retryMs = RETRY_MIN_MS;
          this.#lastError = undefined;
        } catch (err) {
          // Once per distinct failure: a seer-only node retries quietly until a tns node appears.
          if (`${err}` !== this.#lastError) this.log(`seer: cannot read the served names from TNS (retrying): ${err}`);
          this.#lastError = `${err}`;
          const retry = this.#retryMs;
          this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
          this.#running = undefined;
          this.#schedule(retry);
          return;
        }
      }
      this.#running = undefined;
    })();
    return await this.#running;
  }

  async #rebuild(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${REBUILD_TIMEOUT_MS} ms`)), REBUILD_TIMEOUT_MS);
      Deno.unrefTimer(timer);
    });
    const generation = ++this.#generation;
    try {
      await Promise.race([
        this.#read().then((names) => {
          if (generation === this.#generation) this.#apply(names);
        }),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every FQDN of every served deployment that its project owns (TNS's ownership rule decides, not seer). */
  async #read(): Promise<Set<string>> {
    const names = new Set<string>();
    for (const record of await this.tns.servedRecords()) {
      for (const fqdn of fqdnsOf(record)) {
        const owner = await this.tns.resolveHost(fqdn);
        if (owner?.project === record.project) names.add(normalize(fqdn));
      }
    }
    return names;
  }

  #apply(names: Set<string>): void {
    if (names.size === this.#names.size && [...names].every((n) => this.#names.has(n))) return;
    const ancestors = new Set<string>();
    for (const n of names) {
      for (let i = n.indexOf("."); i >= 0; i = n.indexOf(".", i + 1)) ancestors.add(n.slice(i + 1));
    }
    this.#names = names;
    this.#ancestors = ancestors;
    // Strictly increasing even when two changes land within a second.
    this.#serial = Math.max(this.#serial + 1, Math.floor(Date.now() / 1000));
    this.log(`seer: serving ${names.size} name${names.size === 1 ? "" : "s"} (serial ${this.serial()})`);
  }
}
