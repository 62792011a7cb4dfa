// Host header parsing: what the gateway and the control plane look hosts up by, and what is refused before that.
import { assertEquals } from "../../tests/helpers/assert.ts";
import { parseHost } from "./host.ts";

Deno.test("host: port, case and one trailing dot are dropped; IPv6 literals keep their brackets", () => {
  for (
    const [raw, host] of [
      ["a.test", "a.test"],
      ["A.Test:8080", "a.test"],
      ["a.test.", "a.test"],
      ["a.test.:80", "a.test"],
      ["127.0.0.1:9", "127.0.0.1"],
      ["[::1]:8080", "[::1]"],
      ["[::1]", "[::1]"],
      ["my_host.local", "my_host.local"],
    ]
  ) assertEquals(parseHost(raw), { host }, raw);
});

Deno.test("host: what cannot be a host name is an error naming it, shortened", () => {
  for (const raw of ["", ".", "a..b", "a b", "a.test:x", "a.test:123456", "::1", "a/b", "[::1", `${"a".repeat(254)}`]) {
    const r = parseHost(raw);
    assertEquals("error" in r, true, raw);
  }
  const long = parseHost("a".repeat(3000));
  assertEquals(long, { error: "Host header is 3000 characters, longer than any host name" });
  const shown = parseHost(`${"b".repeat(100)} x`);
  assertEquals("error" in shown && shown.error.includes(`${"b".repeat(64)}..."`), true);
});
