/**
 * Seer: the cloud's authoritative DNS, on every node whose shape runs `seer`, listening on the node's IP and
 * `ports.dns` over UDP and TCP. Every seer answers the same from the same state: the service directory (which nodes
 * are alive and what they run) and TNS (which FQDNs are served). The rules are in zone.ts, the protocol in server.ts.
 *
 * Bounds: a node that dies leaves the answers DEAD_AFTER_MS (6 s) after it was last heard, and resolvers may keep it
 * for one more ANSWER_TTL_S (5 s): 11 s in all. A name deployed or removed shows once TNS's change reaches this node
 * (at once, or within the 5 s fingerprint check on a node without a TNS replica) plus one rebuild of the name set.
 */
import { DEAD_AFTER_MS, type Directory } from "../p2p/directory.ts";
import type { ServiceName } from "../config/shape.ts";
import { startDnsServer } from "./server.ts";
import { ServedNames, type ServedSource } from "./served.ts";
import { answer, type CloudView, normalize } from "./zone.ts";

export interface SeerOptions {
  /** The cloud's FQDN (the config's network-fqdn). */
  cloud: string;
  hostname: string;
  port: number;
  directory: Pick<Directory, "peersFor" | "onChange">;
  tns: ServedSource;
  log?: (line: string) => void;
  tcpIdleMs?: number;
}

export interface Seer {
  hostname: string;
  port: number;
  served: ServedNames;
  close(): Promise<void>;
}

export async function startSeer(opts: SeerOptions): Promise<Seer> {
  const log = opts.log ?? (() => {});
  const served = new ServedNames(opts.tns, log);
  const live = new LiveAddresses(opts.directory);
  const view: CloudView = {
    cloud: normalize(opts.cloud),
    served: (fqdn) => served.has(fqdn),
    servedBelow: (name) => served.hasBelow(name),
    addresses: (service) => live.of(service),
    serial: () => served.serial(),
  };
  // Listen first: a port that cannot be bound fails the node's start with one clear error.
  const server = await startDnsServer({
    hostname: opts.hostname,
    port: opts.port,
    answer: (q) => answer(view, q),
    tcpIdleMs: opts.tcpIdleMs,
    log,
  });
  // Not awaited: the first read of TNS may wait for a tns node to appear; queries meanwhile see no served names.
  served.start().catch((err) => log(`seer: ${err}`));
  return {
    hostname: server.hostname,
    port: server.port,
    served,
    async close() {
      live.stop();
      served.stop();
      await server.close();
    },
  };
}

/**
 * The addresses of the live nodes running each service, remembered between queries: walking the directory per
 * query cost 2-4.6 us, a quarter to a half of what answering costs (in-process, against a fixed list). Exact, not a
 * cache with a TTL: an entry is dropped when any announcement is heard (only that can add a node or change the
 * order) and when the first of its nodes would turn dead (its last heartbeat + DEAD_AFTER_MS).
 */
export class LiveAddresses {
  #memo = new Map<ServiceName, { ips: string[]; until: number }>();
  #off: () => void;

  constructor(private readonly directory: Pick<Directory, "peersFor" | "onChange">) {
    this.#off = directory.onChange(() => this.#memo.clear());
  }

  of(service: ServiceName): string[] {
    const now = Date.now();
    const known = this.#memo.get(service);
    if (known && now <= known.until) return known.ips;
    const peers = this.directory.peersFor(service);
    // A second at most, whatever the entries say: a safety net, not the bound.
    let until = now + 1000;
    for (const p of peers) until = Math.min(until, p.seen + DEAD_AFTER_MS);
    const ips = [...new Set(peers.map((e) => e.ip))];
    this.#memo.set(service, { ips, until });
    return ips;
  }

  stop(): void {
    this.#off();
  }
}
