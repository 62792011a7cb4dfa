/** The text surgery behind `tau drive` edits, and the address checks: cases the CLI test does not reach. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { parseFile } from "./folder.ts";
import { addEntry, layoutOf, removeEntry } from "./edit.ts";
import { cidrProblem, splitHostPort } from "./net.ts";

const hosts = (text: string) => parseFile("hosts.yaml", "hosts.yaml", text);

Deno.test("layoutOf: indentation and list style of the file", () => {
  assertEquals(layoutOf("a:\n    b:\n        - x\n"), { indent: 4, indentSeq: true });
  assertEquals(layoutOf("a:\n  b:\n  - x\n"), { indent: 2, indentSeq: false });
  assertEquals(layoutOf("# only a comment\n"), { indent: 2, indentSeq: true });
});

Deno.test("addEntry: after comments only, into an empty flow map, after a file without a final newline", () => {
  assertEquals(addEntry(hosts("# mine\n"), "h", { addr: ["1.2.3.4/32"] }), "# mine\nh:\n  addr:\n    - 1.2.3.4/32\n");
  assertEquals(addEntry(hosts("{}  # none yet\n"), "h", { a: 1 }), "h:\n  a: 1  # none yet\n");
  assertEquals(addEntry(hosts("x:\n  a: 1"), "h", { a: 2 }), "x:\n  a: 1\nh:\n  a: 2\n");
  // Following the file's own list style.
  assertEquals(addEntry(hosts("x:\n  l:\n  - 1\n"), "h", { l: [2] }), "x:\n  l:\n  - 1\nh:\n  l:\n  - 2\n");
});

Deno.test("removeEntry: the entry's lines, its inline and indented comments; nothing else", () => {
  const text = "# top\na: 1 # one\nb:\n  c: 2 # two\n  # about b\n# about d\nd: {e: 3}\n";
  assertEquals(removeEntry(hosts(text), "a"), "# top\nb:\n  c: 2 # two\n  # about b\n# about d\nd: {e: 3}\n");
  assertEquals(removeEntry(hosts(text), "b"), "# top\na: 1 # one\n# about d\nd: {e: 3}\n");
  assertEquals(removeEntry(hosts(text), "d"), "# top\na: 1 # one\nb:\n  c: 2 # two\n  # about b\n# about d\n");
  assertEquals(removeEntry(hosts("a:\nb: 1"), "a"), "b: 1");
});

Deno.test("cidrProblem and splitHostPort", () => {
  for (const ok of ["10.0.0.1/8", "0.0.0.0/0", "2001:db8::1/64", "::1/128", "::ffff:10.0.0.1/96"]) {
    assertEquals(cidrProblem(ok), undefined, ok);
  }
  for (
    const bad of ["10.0.0.1", "10.0.0.256/8", "10.0.0.1/33", "2001:db8::1/129", "host/24", "1.2.3/24", "10.0.0.1/"]
  ) {
    assertEquals(typeof cidrProblem(bad), "string", bad);
  }
  assertEquals(splitHostPort("10.0.0.5"), { addr: "10.0.0.5" });
  assertEquals(splitHostPort("10.0.0.5:2222"), { addr: "10.0.0.5", port: 2222 });
  assertEquals(splitHostPort("node-1.example.com:22"), { addr: "node-1.example.com", port: 22 });
  assertEquals(splitHostPort("2001:db8::5"), { addr: "2001:db8::5" });
  assertEquals(splitHostPort("[2001:db8::5]:22"), { addr: "2001:db8::5", port: 22 });
  assertEquals(splitHostPort("10.0.0.5:0"), undefined);
  assertEquals(splitHostPort("10.0.0.5:99999"), undefined);
  assertEquals(splitHostPort("bad host:22"), undefined);
});
