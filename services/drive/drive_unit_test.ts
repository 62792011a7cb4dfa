/** The text surgery behind `tau drive` edits, and the address checks: cases the CLI test does not reach. */
import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { TAUBYTE_FOLDER, writeFolder } from "../../tests/fixtures/drive_taubyte.ts";
import { readCloud } from "./model.ts";
import { parseFile } from "./folder.ts";
import { addEntry, layoutOf, removeEntry, setIn } from "./edit.ts";
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
  let refused = "";
  try {
    removeEntry(hosts("{a: 1, b: 2}\n"), "a");
  } catch (err) {
    refused = (err as Error).message;
  }
  assertEquals(refused, "hosts.yaml: is one flow map ({...}); tau removes entries from block maps only");
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

Deno.test("setIn: a node's key and id written back, the rest of the file kept", () => {
  const text =
    "# hosts\nh1: # first\n  ssh: {addr: 1.2.3.4}\n  shapes:\n    all: {} # planted later\n  # end of h1\nh2:\n  addr: [x]\n";
  assertEquals(
    setIn(hosts(text), ["h1", "shapes", "all"], { key: "K", id: "I" }),
    "# hosts\nh1: # first\n  ssh: {addr: 1.2.3.4}\n  shapes:\n    all:\n      key: K\n      id: I # planted later\n  # end of h1\nh2:\n  addr: [x]\n",
  );
  // A scalar in place; a missing key at the end of its map; a missing map created.
  const planted = "h1:\n  shapes:\n    all:\n      key: K # mine\n      id: I\n";
  assertEquals(setIn(hosts(planted), ["h1", "shapes", "all", "key"], "K2"), planted.replace("key: K ", "key: K2 "));
  assertEquals(
    setIn(hosts(planted), ["h1", "shapes", "edge"], { key: "E" }),
    planted + "    edge:\n      key: E\n",
  );
  assertEquals(
    setIn(hosts("h2:\n  addr: [x]\n# after\n"), ["h2", "shapes", "all"], { key: "K" }),
    "h2:\n  addr: [x]\n  shapes:\n    all:\n      key: K\n# after\n",
  );
  assertEquals(
    setIn(hosts("h3:\n    shapes:\n"), ["h3", "shapes", "all", "id"], "I"),
    "h3:\n    shapes:\n        all:\n            id: I\n",
  );
  assertEquals(setIn(hosts("# none\n"), ["h4", "shapes"], {}), "# none\nh4:\n  shapes: {}\n");
});

Deno.test("readCloud: the Taubyte-layout fixture as typed values; a bad folder is its first problem", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tau-drive-model-" });
  try {
    await writeFolder(dir, TAUBYTE_FOLDER);
    const c = await readCloud(dir);
    assertEquals(c.domain.root, "fixture.example");
    assertEquals(c.swarmKeyFile, `${dir}/keys/swarm.key`);
    assertEquals(c.bootstrap, { control: ["north"], edge: ["south", "north"] });
    assertEquals(c.hosts.map((h) => [h.name, h.ssh.port, h.nodes.map((n) => n.shape)]), [
      ["north", 2222, ["control", "edge"]],
      ["south", 22, ["edge"]],
    ]);
    assertEquals(c.hosts[1].nodes[0].id, "12D3KooWDrCqgRip4ix7HrhftDQ1c5QWaXM8rgHDqnr1xzAY18U4");
    assertEquals(c.shapes[1], {
      name: "edge",
      services: ["gateway", "patrick", "monkey"],
      ports: { main: 5200, lite: 5210 },
      plugins: ["example-plugin@v1.0"],
    });
    assertEquals(c.credentials[1], {
      name: "deploy",
      username: "deployer",
      password: undefined,
      keyFile: `${dir}/keys/deploy.pem`,
    });
    await Deno.writeTextFile(`${dir}/auth.yaml`, "ops: {username: x}\n");
    await assertRejects(
      () => readCloud(dir),
      /auth\.yaml:1: credential ops has neither a password nor a key \(and \d+ more\)$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
