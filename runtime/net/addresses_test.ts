// The address policy of the outbound client (addresses.ts, judged through classifyAddress and checkAddress): what is
// denied, including IPv6 wrappings of a denied IPv4 address, and what is public. Public addresses are only judged,
// never dialled.
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { classifyAddress } from "./addresses.ts";
import { checkAddress } from "./allow.ts";

Deno.test("the policy denies loopback, private, link-local, reserved and documentation addresses and their IPv6 wrappings", () => {
  const denied: [string, string][] = [
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["10.0.0.5", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "CGNAT"],
    ["100.127.255.255", "CGNAT"],
    ["169.254.169.254", "link-local"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "broadcast"],
    ["192.0.2.1", "documentation"],
    ["198.51.100.7", "documentation"],
    ["203.0.113.9", "documentation"],
    ["198.18.0.1", "benchmarking"],
    ["198.19.255.255", "benchmarking"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["0:0:0:0:0:0:0:1", "loopback"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["fe80::1", "link-local"],
    ["febf::1", "link-local"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "documentation"],
    ["::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"],
    ["::ffff:7f00:1", "IPv4-mapped form of 127.0.0.1, a loopback"],
    ["::ffff:10.1.2.3", "IPv4-mapped form of 10.1.2.3, a private"],
    ["::ffff:a9fe:a9fe", "169.254.169.254, a link-local"],
    ["::127.0.0.1", "IPv4-compatible form of 127.0.0.1"],
    ["::ffff:0:192.168.0.1", "IPv4-translated form of 192.168.0.1"],
    ["64:ff9b::7f00:1", "NAT64 form of 127.0.0.1"],
    ["64:ff9b::10.0.0.1", "NAT64 form of 10.0.0.1"],
    ["2002:7f00:1::", "6to4 form of 127.0.0.1"],
    ["2002:c0a8:101::1", "6to4 form of 192.168.1.1"],
  ];
  for (const [ip, why] of denied) {
    const reason = classifyAddress(ip);
    assert(reason !== null, `${ip} should be denied`);
    assertStringIncludes(reason, why, ip);
    const check = checkAddress(ip, 80, ip, []);
    assert(!check.allowed, `${ip} denied by checkAddress`);
    assertEquals(check.reason, reason);
  }
  assertEquals(classifyAddress("example.com"), "not an IP address");
  assertEquals(checkAddress("not-an-ip", 80, "x", []).allowed, false, "fails closed");
  assertEquals(checkAddress("127.1", 80, "x", []).allowed, false, "not a dotted quad: not an address");
});

Deno.test("public addresses are allowed by policy (judged only, never dialled)", () => {
  const publicIps = [
    "93.184.215.14",
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "172.15.255.255",
    "100.128.0.1",
    "100.63.255.255",
    "192.169.0.1",
    "198.20.0.1",
    "223.255.255.255",
    "11.0.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
  ];
  for (const ip of publicIps) {
    assertEquals(classifyAddress(ip), null, ip);
    assertEquals(checkAddress(ip, 443, "api.example.com", []), { allowed: true }, ip);
  }
});
