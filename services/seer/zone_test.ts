/** Seer's answering rules (zone.ts) against a fixed view of a cloud: no sockets. */
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import type { RecordType, SoaAnswer } from "@dnsquery/dns-packet";
import { answer, ANSWER_TTL_S, type CloudView, NEGATIVE_TTL_S } from "./zone.ts";
import type { ServiceName } from "../config/shape.ts";

const nodes: Record<string, string[]> = {
  gateway: ["127.0.0.11", "127.0.0.12", "fd00::13"],
  seer: ["127.0.0.11", "127.0.0.13"],
  tns: ["127.0.0.11"],
};
const served = new Set(["api.shop.g.cloud.test", "www.example.com", "cloud.test"]);
const view: CloudView = {
  cloud: "cloud.test",
  served: (n) => served.has(n),
  servedBelow: (n) => [...served].some((s) => s.endsWith(`.${n}`)),
  addresses: (s: ServiceName) => nodes[s] ?? [],
  serial: () => 42,
};
const ask = (name: string, type: RecordType = "A") => answer(view, { name, type, class: "IN" });
const soaOf = (r: ReturnType<typeof ask>) => r.authorities[0] as SoaAnswer;

Deno.test("zone: a served FQDN answers the live gateways, A and AAAA apart, in the asker's spelling", () => {
  const a = ask("API.Shop.g.cloud.test");
  assertEquals(a.rcode, "NOERROR");
  assert(a.authoritative);
  assertEquals(a.answers.map((r) => [r.name, r.type, r.data, r.ttl]), [
    ["API.Shop.g.cloud.test", "A", "127.0.0.11", ANSWER_TTL_S],
    ["API.Shop.g.cloud.test", "A", "127.0.0.12", ANSWER_TTL_S],
  ]);
  assertEquals(ask("api.shop.g.cloud.test", "AAAA").answers.map((r) => r.data), ["fd00::13"]);
  assertEquals(ask("api.shop.g.cloud.test", "ANY").answers.length, 3);
  // A custom domain outside the zones, delegated to the cloud, answers too; so does the cloud's apex when served.
  assertEquals(ask("www.example.com.").answers.length, 2);
  assertEquals(ask("cloud.test").answers.length, 2);
});

Deno.test("zone: <service>.tau.<cloud> answers the live nodes running it; tau.<cloud> is the cloud's own", () => {
  assertEquals(ask("seer.tau.cloud.test").answers.map((r) => r.data), ["127.0.0.11", "127.0.0.13"]);
  assertEquals(ask("gateway.tau.cloud.test").answers.map((r) => r.data), ["127.0.0.11", "127.0.0.12"]);
  // A known service with no live node: the name exists, with no address (NODATA, SOA for negative caching).
  const none = ask("hoarder.tau.cloud.test");
  assertEquals([none.rcode, none.answers.length, none.authorities[0].type], ["NOERROR", 0, "SOA"]);
  assertEquals(ask("nosuch.tau.cloud.test").rcode, "NXDOMAIN");
  assertEquals(ask("x.seer.tau.cloud.test").rcode, "NXDOMAIN");
  // Even a project that claims a name under tau.<cloud> cannot answer for it.
  served.add("gateway.tau.cloud.test");
  assertEquals(ask("gateway.tau.cloud.test").answers.length, 2);
  served.add("mine.tau.cloud.test");
  assertEquals(ask("mine.tau.cloud.test").rcode, "NXDOMAIN");
  served.delete("gateway.tau.cloud.test");
  served.delete("mine.tau.cloud.test");
  // tau.<cloud> itself exists (an empty non-terminal).
  const ent = ask("tau.cloud.test");
  assertEquals([ent.rcode, ent.answers.length, ent.authorities[0].type], ["NOERROR", 0, "SOA"]);
  const txt = ask("seer.tau.cloud.test", "TXT");
  assertEquals([txt.rcode, txt.answers.length], ["NOERROR", 0]);
});

Deno.test("zone: unknown names in the zones are NXDOMAIN with the zone's SOA; other types NODATA", () => {
  const nx = ask("nope.g.cloud.test");
  assertEquals(nx.rcode, "NXDOMAIN");
  assert(nx.authoritative);
  assertEquals(soaOf(nx).name, "g.cloud.test");
  assertEquals(soaOf(nx).data.minimum, NEGATIVE_TTL_S);
  assertEquals(soaOf(nx).data.serial, 42);
  assertEquals(soaOf(nx).data.mname, "seer.tau.cloud.test");
  assertEquals(soaOf(ask("nope.cloud.test")).name, "cloud.test");
  assertEquals(ask("x.api.shop.g.cloud.test").rcode, "NXDOMAIN");
  // An existing name with another type: NOERROR, no answers, the SOA.
  const nodata = ask("api.shop.g.cloud.test", "MX");
  assertEquals([nodata.rcode, nodata.answers.length, soaOf(nodata).name], ["NOERROR", 0, "g.cloud.test"]);
  // An empty non-terminal above a served name exists.
  assertEquals(ask("shop.g.cloud.test").rcode, "NOERROR");
  assertEquals(ask("shop.g.cloud.test").answers.length, 0);
});

Deno.test("zone: apexes answer SOA and NS (with the seers as glue)", () => {
  for (const apex of ["cloud.test", "g.cloud.test"]) {
    const soa = ask(apex, "SOA");
    assertEquals([soa.rcode, soa.answers[0].type, soa.answers[0].name], ["NOERROR", "SOA", apex]);
    const ns = ask(apex, "NS");
    assertEquals(ns.answers.map((r) => [r.type, r.data]), [["NS", "seer.tau.cloud.test"]]);
    assertEquals(ns.additionals.map((r) => r.data), ["127.0.0.11", "127.0.0.13"]);
  }
  // The cloud's apex is served by a project here: addresses, and still its SOA.
  assertEquals(ask("cloud.test", "ANY").answers.map((r) => r.type), ["A", "A", "AAAA"]);
  assertEquals(ask("g.cloud.test", "A").answers.length, 0);
  assertEquals(ask("g.cloud.test", "A").rcode, "NOERROR");
});

Deno.test("zone: names outside the zones are REFUSED, not authoritative", () => {
  for (const name of ["example.com", "api.example.com", "other.test", "cloud.test.evil", "xcloud.test", "."]) {
    const r = ask(name);
    assertEquals(r.rcode, "REFUSED", name);
    assertEquals([r.authoritative, r.answers.length, r.authorities.length], [false, 0, 0], name);
  }
});
