/**
 * What seer answers, as a pure function of one question and a view of the cloud (no sockets here: server.ts).
 *
 * The cloud's zones are its FQDN (`network-fqdn`, e.g. example.com) and the generated domain under it (g.example.com).
 * In order:
 *   1. `<service>.tau.<cloud>`: the IPs of the live nodes running that service (`tau.<cloud>` is reserved for the
 *      cloud: a project cannot take these names over by claiming them).
 *   2. An FQDN that TNS serves (a current deployment on the served branch owns it), inside the zones or not (a custom
 *      domain delegated to the cloud): the IPs of the live gateway nodes.
 *   3. Anything else inside the zones: NXDOMAIN with the zone's SOA, or NOERROR/NODATA with the SOA for a name that
 *      exists (an apex, a service name, a served name, or an empty non-terminal above one) with another type.
 *   4. Anything else: REFUSED (not authoritative, no recursion).
 * A name with no live node to answer it is NODATA, not an error: the SOA's 5 s negative TTL makes a resolver ask again
 * soon.
 */
import type { Answer, Question } from "@dnsquery/dns-packet";
import { type ServiceName, SERVICES } from "../config/shape.ts";

/**
 * TTL of every address answer. A dead node leaves seer's answers DEAD_AFTER_MS (6 s) after it was last heard; a
 * resolver may serve the old answer for one more TTL, so a client stops seeing it within 6 + 5 = 11 s, inside the 15 s
 * bound, with room for a gossip hop and a resolver that rounds up. Shorter would multiply resolver traffic for no gain.
 */
export const ANSWER_TTL_S = 5;
/** How long a resolver may cache NXDOMAIN/NODATA (the SOA's minimum): a new deployment's name answers within 5 s. */
export const NEGATIVE_TTL_S = 5;
/** TTL of the SOA and NS records themselves: they only change when the cloud is renamed. */
export const ZONE_TTL_S = 60;

/** What seer knows of the cloud at the moment of a query. */
export interface CloudView {
  /** The cloud's FQDN, lower case, no trailing dot. */
  cloud: string;
  /** Is this FQDN (lower case) served by TNS now? */
  served(fqdn: string): boolean;
  /** Is there a served FQDN strictly below this name (so the name exists as an empty non-terminal)? */
  servedBelow(name: string): boolean;
  /** Addresses of the live nodes running the service, best first, without duplicates. */
  addresses(service: ServiceName): string[];
  /** The SOA serial: changes whenever the served names do. */
  serial(): number;
}

export type Rcode = "NOERROR" | "NXDOMAIN" | "REFUSED";

export interface Reply {
  rcode: Rcode;
  /** The AA bit: set on every answer from inside our authority, clear on REFUSED. */
  authoritative: boolean;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

/** Lower case, no trailing dot ("." stays the root). */
export function normalize(name: string): string {
  const n = name.toLowerCase();
  return n.length > 1 && n.endsWith(".") ? n.slice(0, -1) : n;
}

const isV6 = (ip: string) => ip.includes(":");

export function answer(view: CloudView, q: Question): Reply {
  const name = normalize(q.name);
  const cloud = view.cloud;
  const generated = `g.${cloud}`;
  const services = `tau.${cloud}`;
  const zone = name === generated || name.endsWith(`.${generated}`)
    ? generated
    : name === cloud || name.endsWith(`.${cloud}`)
    ? cloud
    : undefined;
  const soa = (owner: string): Answer => ({
    name: owner,
    type: "SOA",
    ttl: ZONE_TTL_S,
    data: {
      mname: `seer.${services}`,
      rname: `hostmaster.${cloud}`,
      serial: view.serial(),
      // No secondaries transfer these zones (every seer is a primary built from the same state): nominal values.
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: NEGATIVE_TTL_S,
    },
  });
  const reply = (rcode: Rcode, answers: Answer[] = [], authorities: Answer[] = [], additionals: Answer[] = []) => ({
    rcode,
    authoritative: true,
    answers,
    authorities,
    additionals,
  });
  // Address records answer in the asker's spelling of the name (resolvers that randomise case compare it).
  const addressAnswer = (ips: string[], owner: string) => {
    const records: Answer[] = [];
    const wantA = q.type === "A" || q.type === "ANY";
    const wantAAAA = q.type === "AAAA" || q.type === "ANY";
    for (const ip of ips) {
      if (isV6(ip) ? wantAAAA : wantA) {
        records.push({ name: q.name, type: isV6(ip) ? "AAAA" : "A", ttl: ANSWER_TTL_S, data: ip });
      }
    }
    return records.length ? reply("NOERROR", records) : reply("NOERROR", [], [soa(owner)]);
  };

  if (zone === cloud && (name === services || name.endsWith(`.${services}`))) {
    if (name === services) return reply("NOERROR", [], [soa(cloud)]); // an empty non-terminal
    const service = name.slice(0, -services.length - 1);
    if (!(SERVICES as readonly string[]).includes(service)) return reply("NXDOMAIN", [], [soa(cloud)]);
    return addressAnswer(view.addresses(service as ServiceName), cloud);
  }
  const served = view.served(name);
  if (!zone && !served) {
    return { rcode: "REFUSED", authoritative: false, answers: [], authorities: [], additionals: [] };
  }
  if (name === zone && (q.type === "SOA" || q.type === "NS" || (q.type === "ANY" && !served))) {
    if (q.type === "NS") {
      const ns = `seer.${services}`;
      const glue = view.addresses("seer").map((ip): Answer => ({
        name: ns,
        type: isV6(ip) ? "AAAA" : "A",
        ttl: ANSWER_TTL_S,
        data: ip,
      }));
      return reply("NOERROR", [{ name: q.name, type: "NS", ttl: ZONE_TTL_S, data: ns }], [], glue);
    }
    return reply("NOERROR", [{ ...soa(zone), name: q.name }]);
  }
  if (served) return addressAnswer(view.addresses("gateway"), zone ?? name);
  if (name === zone) return reply("NOERROR", [], [soa(zone)]);
  if (!zone) return reply("NOERROR"); // unreachable: outside the zones only served names get this far
  if (view.servedBelow(name)) return reply("NOERROR", [], [soa(zone)]);
  return reply("NXDOMAIN", [], [soa(zone)]);
}
