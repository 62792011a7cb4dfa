/**
 * `tau drive` offline (issue 13): init, validate, and the host / shape / auth edits, all through the CLI. Each bad
 * input gets its one clear line and leaves the folder's files as they were; an edit keeps the user's comments and
 * layout byte for byte; a folder in Taubyte's own layout loads.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { tau, tauWithStdin } from "./helpers/cloud.ts";
import { TAUBYTE_FOLDER, writeFolder } from "./fixtures/drive_taubyte.ts";

/** 1-based line of the first line of `text` containing `needle`. */
function lineOf(text: string, needle: string, from = 0): number {
  const i = text.indexOf(needle, from);
  assert(i >= 0, `${needle} not in the text`);
  return text.slice(0, i).split("\n").length;
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of ["cloud.yaml", "hosts.yaml", "auth.yaml", "shapes.yaml"]) {
    out[f] = await Deno.readTextFile(join(dir, f));
  }
  return out;
}

/** A refused command: exit 1, one error line and one hint line, the message included, and the files unchanged. */
async function refused(dir: string, args: string[], message: string): Promise<void> {
  const before = await snapshot(dir);
  const r = await tau([...args, "--dir", dir]);
  assertEquals(r.code, 1, `${args.join(" ")} should fail: ${r.stdout}${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assertEquals(lines.length, 2, r.stderr);
  assert(lines[0].startsWith("error: ") && lines[1].startsWith("  hint: "), r.stderr);
  assertStringIncludes(lines[0], message);
  assertEquals(await snapshot(dir), before, `${args.join(" ")} changed the folder`);
}

Deno.test("tau drive: init, edits, validate, comments kept", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "tau-drive-" });
  const dir = join(work, "clouds", "demo");
  const ok = async (args: string[], expect: string) => {
    const r = await tau([...args, "--dir", dir]);
    assertEquals(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assertStringIncludes(r.stdout, expect);
    return r;
  };
  try {
    await t.step("init writes the folder with a swarm key and a DV key pair; validate says ok", async () => {
      await ok(
        ["drive", "init", "demo", "--root-domain", "example.com", "--generated-domain", "g.example.com"],
        "cloud demo",
      );
      const swarm = (await Deno.readTextFile(join(dir, "keys/swarm.key"))).split("\n");
      assertEquals(swarm.slice(0, 2), ["/key/swarm/psk/1.0.0/", "/base16/"]);
      assert(/^[0-9a-f]{64}$/.test(swarm[2]));
      assertStringIncludes(await Deno.readTextFile(join(dir, "keys/dv_private.key")), "BEGIN PRIVATE KEY");
      assertStringIncludes(await Deno.readTextFile(join(dir, "keys/dv_public.key")), "BEGIN PUBLIC KEY");
      const cloud = await Deno.readTextFile(join(dir, "cloud.yaml"));
      assertStringIncludes(cloud, "root: example.com");
      assertStringIncludes(cloud, "# Only nodes holding this key join the cloud.");
      assertEquals((await Deno.stat(join(dir, "keys/swarm.key"))).mode! & 0o777, 0o600);
      await ok(["drive", "validate"], "ok: ");
    });

    await t.step("the default folder is ~/.tau/clouds/<cloud> ($TAU_HOME/clouds)", async () => {
      const r = await tau(["drive", "validate", "demo"], { env: { TAU_HOME: work } });
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, `ok: ${dir}: 0 hosts, 0 shapes, 0 nodes, 0 credentials`);
    });

    await t.step("no such folder, or no cloud named: one clear line", async () => {
      const none = await tau(["drive", "validate", "--dir", join(work, "nowhere")]);
      assertEquals(none.code, 1);
      assertStringIncludes(
        none.stderr,
        `error: cloud folder ${join(work, "nowhere")} does not exist\n  hint: create it with`,
      );
      const unnamed = await tau(["drive", "validate"]);
      assertEquals(unnamed.code, 1);
      assertStringIncludes(unnamed.stderr, "error: which cloud? name it or pass --dir DIR");
    });

    await t.step("init refuses an existing folder", async () => {
      await refused(
        dir,
        ["drive", "init", "demo", "--root-domain", "a.com", "--generated-domain", "g.a.com"],
        "already exists",
      );
    });

    await t.step("auth add: a key copied into keys/, a password from stdin", async () => {
      const key = join(work, "id_ops");
      await Deno.writeTextFile(key, "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
      const r = await ok(["drive", "auth", "add", "ops", "--username", "tau", "--key", key], "credential ops added");
      assertStringIncludes(r.stdout, `key copied to ${join(dir, "keys/id_ops")}`);
      const p = await tauWithStdin(
        ["drive", "auth", "add", "pw", "--username", "root", "--password-stdin", "--dir", dir],
        "s3cret\n",
      );
      assertEquals(p.code, 0, p.stderr);
      const auth = await Deno.readTextFile(join(dir, "auth.yaml"));
      assertStringIncludes(auth, "ops:\n  username: tau\n  key: keys/id_ops\n");
      assertStringIncludes(auth, "pw:\n  username: root\n  password: s3cret\n");
      assertEquals((await Deno.stat(join(dir, "auth.yaml"))).mode! & 0o777, 0o600);
      await refused(
        dir,
        ["drive", "auth", "add", "ops", "--username", "x", "--key", key],
        "credential ops already exists",
      );
      await refused(dir, ["drive", "auth", "add", "nokey", "--username", "x"], "one of --password-stdin or --key");
      // A key already inside the folder is named by its relative path, not copied.
      const inside = await ok(
        ["drive", "auth", "add", "ops2", "--username", "tau", "--key", join(dir, "keys/id_ops")],
        "added",
      );
      assert(!inside.stdout.includes("copied"), inside.stdout);
      assertStringIncludes(
        await Deno.readTextFile(join(dir, "auth.yaml")),
        "ops2:\n  username: tau\n  key: keys/id_ops\n",
      );
      await ok(["drive", "auth", "rm", "ops2"], "credential ops2 removed");
    });

    await t.step("shape add, and its refusals", async () => {
      await ok(
        [
          "drive",
          "shape",
          "add",
          "all",
          "--services",
          "auth,tns,seer,gateway",
          "--port-main",
          "4242",
          "--port-lite",
          "4262",
        ],
        "shape all added",
      );
      await ok(
        ["drive", "shape", "add", "clash", "--services", "substrate", "--port-main", "4242", "--port-lite", "4263"],
        "shape clash added",
      );
      await refused(
        dir,
        ["drive", "shape", "add", "bad", "--services", "auth,warp", "--port-main", "1", "--port-lite", "2"],
        "unknown service warp",
      );
      await refused(
        dir,
        ["drive", "shape", "add", "same", "--services", "auth", "--port-main", "5000", "--port-lite", "5000"],
        "ports main and lite are both 5000",
      );
    });

    await t.step("host add, and its refusals: dangling credential or shape, bad CIDR, port clash", async () => {
      await ok(
        [
          "drive",
          "host",
          "add",
          "host1",
          "--addr",
          "10.0.0.5/24",
          "--ssh",
          "10.0.0.5:2222",
          "--auth",
          "ops",
          "--shape",
          "all",
        ],
        "host host1 added",
      );
      const hosts = await Deno.readTextFile(join(dir, "hosts.yaml"));
      assertStringIncludes(hosts, "host1:\n  addr:\n    - 10.0.0.5/24\n  ssh:\n    addr: 10.0.0.5\n    port: 2222\n");
      const add = (name: string, ...rest: string[]) => ["drive", "host", "add", name, "--ssh", "10.0.0.6", ...rest];
      await refused(dir, add("h2", "--addr", "10.0.0.6/24", "--auth", "ghost"), "credential ghost is not defined");
      await refused(
        dir,
        add("h2", "--addr", "10.0.0.6/24", "--auth", "ops", "--shape", "nope"),
        "shape nope is not defined",
      );
      await refused(dir, add("h2", "--addr", "10.0.0.300/24", "--auth", "ops"), "10.0.0.300 is not an IP address");
      await refused(dir, add("h2", "--addr", "10.0.0.6/33", "--auth", "ops"), "/33 is longer than 32 bits");
      await refused(
        dir,
        add("h2", "--addr", "10.0.0.6/24", "--auth", "ops", "--shape", "all,clash"),
        "shapes all and clash both use port 4242",
      );
      await refused(dir, add("host1", "--addr", "10.0.0.6/24", "--auth", "ops"), "host host1 already exists");
      await refused(
        dir,
        add("h2", "--addr", "10.0.0.6/24", "--auth", "ops", "--location", "91,0"),
        "--location 91,0 is not",
      );
      await ok(["drive", "validate"], "ok: ");
    });

    await t.step("rm refuses what would dangle", async () => {
      await refused(dir, ["drive", "shape", "rm", "all"], "host host1 carries shape all (");
      await refused(dir, ["drive", "auth", "rm", "ops"], "host host1 logs in with ops (");
      // A bootstrap host, written by hand as a user would.
      const cloud = join(dir, "cloud.yaml");
      const text = await Deno.readTextFile(cloud);
      await Deno.writeTextFile(cloud, text.replace("bootstrap: {}", "bootstrap:\n    all: [host1]"));
      await refused(dir, ["drive", "host", "rm", "host1"], "host host1 is a bootstrap host of shape all (");
      await Deno.writeTextFile(cloud, text);
      await ok(["drive", "shape", "rm", "clash"], "shape clash removed");
      await ok(["drive", "auth", "rm", "pw"], "credential pw removed");
    });

    await t.step("an edit keeps the user's comments and layout byte for byte", async () => {
      const file = join(dir, "hosts.yaml");
      // The user's own hand: comments above, inline and below a host, flow style, a blank line, odd spacing.
      const mine = (await Deno.readTextFile(file)) +
        "# the rack in the basement\n" +
        "basement:   # keep this one\n" +
        "  addr: [ 10.0.1.9/24 ]   # static lease\n" +
        "  ssh: {addr: 10.0.1.9, auth: [ops]}\n" +
        "  # no shapes yet\n" +
        "\n" +
        "# end of my hosts\n";
      await Deno.writeTextFile(file, mine);
      await ok(
        [
          "drive",
          "host",
          "add",
          "host3",
          "--addr",
          "10.0.0.7/24",
          "--ssh",
          "10.0.0.7",
          "--auth",
          "ops",
          "--location",
          "1.5,-2",
        ],
        "added",
      );
      const added = await Deno.readTextFile(file);
      assert(added.startsWith(mine), `the file before the new host changed:\n${added}`);
      assertEquals(
        added.slice(mine.length),
        "host3:\n  addr:\n    - 10.0.0.7/24\n  ssh:\n    addr: 10.0.0.7\n    port: 22\n    auth:\n      - ops\n  location:\n    lat: 1.5\n    long: -2\n",
      );
      await ok(["drive", "host", "rm", "host3"], "host host3 removed");
      assertEquals(await Deno.readTextFile(file), mine);
      // Removing a host cuts its own lines only: the comment above it and the ones after it stay.
      await ok(["drive", "host", "rm", "basement"], "removed");
      const after = await Deno.readTextFile(file);
      assertStringIncludes(after, "# the rack in the basement\n\n# end of my hosts\n");
      assert(!after.includes("static lease") && !after.includes("no shapes yet"), after);
      await ok(["drive", "validate"], "ok: ");
    });

    await t.step("validate: each problem one line naming file and line; exit non-zero", async () => {
      const bad = join(work, "bad");
      const files = { ...TAUBYTE_FOLDER };
      files["hosts.yaml"] = files["hosts.yaml"]
        .replace("- 192.0.2.10/24", "- 192.0.2.300/24")
        .replace("            - deploy", "            - deploy\n            - ghost")
        .replace("        edge: {}", "        edge: {}\n        missing: {}");
      files["cloud.yaml"] = files["cloud.yaml"].replace(
        "            - north\n",
        "            - north\n            - west\n",
      );
      files["auth.yaml"] = files["auth.yaml"].replace("keys/deploy.pem", "keys/nope.pem");
      files["shapes.yaml"] = files["shapes.yaml"].replace("main: 5200", "main: 5100").replace(
        "- monkey",
        "- spaceship",
      );
      await writeFolder(bad, files);
      const r = await tau(["drive", "validate", "--dir", bad]);
      assertEquals(r.code, 1, r.stdout);
      const h = files["hosts.yaml"], c = files["cloud.yaml"], a = files["auth.yaml"], s = files["shapes.yaml"];
      const expected = [
        `${bad}/shapes.yaml:${lineOf(s, "- spaceship")}: shape edge: unknown service spaceship`,
        `${bad}/auth.yaml:${
          lineOf(a, "key: keys/nope.pem")
        }: credential deploy: key keys/nope.pem does not exist in the cloud folder`,
        `${bad}/hosts.yaml:${
          lineOf(h, "- 192.0.2.300/24")
        }: host north: addr "192.0.2.300/24" is not a CIDR: 192.0.2.300 is not an IP address`,
        `${bad}/hosts.yaml:${
          lineOf(h, "edge: {}")
        }: host north: port 5100 is used by shapes control (ports.main) and edge (ports.main)`,
        `${bad}/hosts.yaml:${lineOf(h, "missing: {}")}: host north: shape missing is not defined in shapes.yaml`,
        `${bad}/hosts.yaml:${lineOf(h, "- ghost")}: host south: credential ghost is not defined in auth.yaml`,
        `${bad}/cloud.yaml:${lineOf(c, "- west")}: p2p.bootstrap.control: host west is not defined in hosts.yaml`,
      ];
      const lines = r.stderr.trim().split("\n");
      for (const e of expected) assert(lines.some((l) => l.startsWith(e)), `missing: ${e}\n${r.stderr}`);
      assertEquals(lines.length, expected.length + 2, r.stderr);
      assertStringIncludes(r.stderr, `error: cloud folder ${bad} has ${expected.length} problems`);
    });

    await t.step("validate: broken YAML names its file and line", async () => {
      const broken = join(work, "broken");
      await writeFolder(broken, { ...TAUBYTE_FOLDER, "hosts.yaml": "north:\n    addr: [192.0.2.10/24\n    ssh: {}\n" });
      const r = await tau(["drive", "validate", "--dir", broken]);
      assertEquals(r.code, 1);
      assert(new RegExp(`^${broken}/hosts\\.yaml:\\d+: `).test(r.stderr), r.stderr);
      // An edit of a broken file is refused with the same line, the file untouched.
      await refused(
        broken,
        ["drive", "host", "add", "x", "--addr", "1.2.3.4/32", "--ssh", "1.2.3.4", "--auth", "ops"],
        `${broken}/hosts.yaml:`,
      );
    });

    await t.step("Taubyte's own layout loads: notes for what tau keeps but does not use", async () => {
      const tb = join(work, "taubyte");
      await writeFolder(tb, TAUBYTE_FOLDER);
      const r = await tau(["drive", "validate", "--dir", tb]);
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(
        r.stdout,
        `ok: ${tb}: 2 hosts, 2 shapes, 3 nodes, 2 credentials; kept: accounts.yaml, tenancy.yaml`,
      );
      assertStringIncludes(r.stdout, "shape control: tau does not run accounts yet");
      assertStringIncludes(r.stdout, "tau does not load plugins");
      // An edit of a 4-space file writes 4 spaces, like the rest of it.
      await ok2(tb, [
        "drive",
        "host",
        "add",
        "east",
        "--addr",
        "203.0.113.5/24",
        "--ssh",
        "[2001:db8::5]:22",
        "--auth",
        "ops",
      ]);
      const hosts = await Deno.readTextFile(join(tb, "hosts.yaml"));
      assert(hosts.startsWith(TAUBYTE_FOLDER["hosts.yaml"]));
      assertStringIncludes(hosts, "east:\n    addr:\n        - 203.0.113.5/24\n    ssh:\n        addr: 2001:db8::5\n");
      // Taubyte's one-file-per-host form is not read yet: a problem, so no host goes unseen.
      await writeFolder(tb, { "hosts/west.yaml": "addr: [192.0.2.30/24]\n" });
      const form = await tau(["drive", "validate", "--dir", tb]);
      assertEquals(form.code, 1);
      assertStringIncludes(form.stderr, `${tb}/hosts/: one file per entry (Taubyte's folder form) is not read yet`);
      await Deno.remove(join(tb, "hosts"), { recursive: true });
      // A node id that is not its key's is caught.
      await Deno.writeTextFile(
        join(tb, "hosts.yaml"),
        hosts.replace(/id: 12D3KooWKC\w+/, "id: 12D3KooWDrCqgRip4ix7HrhftDQ1c5QWaXM8rgHDqnr1xzAY18U4"),
      );
      const v = await tau(["drive", "validate", "--dir", tb]);
      assertEquals(v.code, 1);
      assertStringIncludes(
        v.stderr,
        `${tb}/hosts.yaml:${lineOf(hosts, "id: 12D3KooWKC")}: host north: shape control's id is not its key's`,
      );
    });
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

async function ok2(dir: string, args: string[]) {
  const r = await tau([...args, "--dir", dir]);
  assertEquals(r.code, 0, r.stderr);
}
