// The outbound allow-list (allow.ts): parsing entries, refusing malformed ones (createOutbound too), and letting
// denied addresses through by host name, address, CIDR and port.
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { type AllowEntry, checkAddress, parseAllowEntry, parseAllowList } from "./allow.ts";
import { createOutbound } from "./outbound.ts";

Deno.test("parseAllowEntry: host, host:port, IP, [IPv6]:port and CIDR entries", () => {
  const parsed = (s: string) => {
    const e = parseAllowEntry(s);
    assert(!("error" in e), `${s}: ${"error" in e ? e.error : ""}`);
    return e as AllowEntry;
  };
  assertEquals(parsed("127.0.0.1:18080"), {
    kind: "net",
    text: "127.0.0.1:18080",
    family: 4,
    address: "127.0.0.1",
    prefix: 32,
    port: 18080,
  });
  assertEquals(parsed("[::1]:8080"), {
    kind: "net",
    text: "[::1]:8080",
    family: 6,
    address: "::1",
    prefix: 128,
    port: 8080,
  });
  assertEquals(parsed("fd00::1"), {
    kind: "net",
    text: "fd00::1",
    family: 6,
    address: "fd00::1",
    prefix: 128,
    port: null,
  });
  assertEquals(parsed("localhost:9000"), { kind: "host", text: "localhost:9000", host: "localhost", port: 9000 });
  assertEquals(parsed("DB.Internal."), { kind: "host", text: "DB.Internal.", host: "db.internal", port: null });
  assertEquals(parsed("10.0.0.0/8"), {
    kind: "net",
    text: "10.0.0.0/8",
    family: 4,
    address: "10.0.0.0",
    prefix: 8,
    port: null,
  });
  assertEquals(parsed("fd00::/8"), {
    kind: "net",
    text: "fd00::/8",
    family: 6,
    address: "fd00::",
    prefix: 8,
    port: null,
  });
  assertEquals(parsed("0.0.0.0/0").kind, "net");
  assertEquals(parsed("bücher.example"), {
    kind: "host",
    text: "bücher.example",
    host: "xn--bcher-kva.example",
    port: null,
  });
});

Deno.test("malformed allow-list entries are errors, and createOutbound refuses them", () => {
  const malformed = [
    "",
    "  ",
    "10.0.0.0/33",
    "fd00::/129",
    "10.0.0.1/8", // host bits set
    "10.0.0.0/8:80",
    "host:0",
    "host:65536",
    "host:http",
    "[::1",
    "[::1]8080",
    "[nope]:80",
    "1:2:3",
    "a b",
    "*.example.com",
    "http://example.com",
    "user@example.com",
    "example..com",
    "127.1", // an ambiguous IPv4 form
    "2130706433:80",
  ];
  for (const s of malformed) {
    const e = parseAllowEntry(s);
    assert("error" in e, `${JSON.stringify(s)} should be malformed`);
    assertStringIncludes(e.error, JSON.stringify(s));
  }
  const hostBits = parseAllowEntry("10.0.0.1/8");
  assertStringIncludes("error" in hostBits ? hostBits.error : "", "did you mean 10.0.0.0/8?");
  let thrown: unknown;
  try {
    createOutbound({ allow: ["127.0.0.1:80", "10.0.0.0/33"] });
  } catch (err) {
    thrown = err;
  }
  assert(thrown instanceof Error, "createOutbound throws");
  assertStringIncludes(thrown.message, '"10.0.0.0/33"');
  assertEquals(parseAllowList(["a.example", "10.0.0.0/8"]).length, 2);
});

Deno.test("allow-list entries let denied addresses through by host name, address, CIDR and port", () => {
  const allow = parseAllowList([
    "127.0.0.1:18080",
    "[::1]:8080",
    "localhost:9000",
    "db.internal",
    "10.0.0.0/8",
    "fd00::/8",
    "192.168.1.7",
  ]);
  const yes = (ip: string, port: number, host: string) =>
    assertEquals(checkAddress(ip, port, host, allow), { allowed: true }, `${host} ${ip}:${port}`);
  const no = (ip: string, port: number, host: string) =>
    assertEquals(checkAddress(ip, port, host, allow).allowed, false, `${host} ${ip}:${port}`);
  yes("127.0.0.1", 18080, "127.0.0.1");
  no("127.0.0.1", 18081, "127.0.0.1");
  no("127.0.0.2", 18080, "127.0.0.2");
  yes("::1", 8080, "[::1]");
  no("::1", 8081, "[::1]");
  yes("127.0.0.1", 9000, "localhost");
  yes("::1", 9000, "localhost");
  yes("::1", 9000, "localhost."); // the same name
  no("127.0.0.1", 9001, "localhost");
  no("127.0.0.1", 9000, "127.0.0.1"); // a host entry names the host, not its address
  yes("172.16.5.5", 5432, "db.internal");
  no("172.16.5.5", 5432, "cache.internal");
  yes("10.200.3.4", 1, "anything.example");
  yes("::ffff:10.0.0.9", 80, "anything.example"); // the mapped form of a covered IPv4 address
  yes("fd00:1::5", 80, "[fd00:1::5]");
  no("fc00::5", 80, "[fc00::5]");
  yes("192.168.1.7", 22, "192.168.1.7");
  no("192.168.1.8", 22, "192.168.1.8");
});

Deno.test("checkAddress takes unparsed entries too", () => {
  assertEquals(checkAddress("10.1.1.1", 80, "x.example", ["10.0.0.0/8"]), { allowed: true });
  assertEquals(checkAddress("10.1.1.1", 80, "x.example", ["x.example:81"]).allowed, false);
});
