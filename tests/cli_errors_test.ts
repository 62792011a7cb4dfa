/**
 * What a user sees when something is wrong: one `error:` line saying what and where, one `hint:` line saying what to
 * do, and the detail only with --verbose. Runs the real CLI; needs no cloud.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { tau } from "./helpers/cloud.ts";

// A loopback port that was free a moment ago: nothing listens there, so the connection is refused at once.
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const DEAD_CLOUD = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
listener.close();

Deno.test("an unreachable cloud: one error line and a hint; details only with --verbose", async () => {
  const plain = await tau(["builds", "some_project", "--cloud", DEAD_CLOUD]);
  assertEquals(plain.code, 1);
  const lines = plain.stderr.trim().split("\n");
  assertEquals(lines.length, 2, plain.stderr);
  assertEquals(lines[0], `error: cannot reach the cloud at ${DEAD_CLOUD}`);
  assertStringIncludes(lines[1], "hint: start the local cloud with `deno task dev`");

  const verbose = await tau(["builds", "some_project", "--cloud", DEAD_CLOUD, "--verbose"]);
  assertEquals(verbose.code, 1);
  assert(verbose.stderr.trim().split("\n").length > 2, "--verbose adds the detail");
  assertStringIncludes(verbose.stderr, "TauError: cannot reach the cloud");
});

Deno.test("a project name that is not snake_case is refused before anything is created", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await tau(["new", "project", "Hello-World", "--cloud", DEAD_CLOUD, "--dir", dir]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "error: invalid project name 'Hello-World': use snake_case");
    assertStringIncludes(r.stderr, "hint: try: hello_world");
    assertEquals([...Deno.readDirSync(dir)].length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an unknown command or option is reported by the parser with exit code 2", async () => {
  const r = await tau(["deploy-everything"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "unknown command");
});

Deno.test("a registry password is never taken from the command line", async () => {
  const r = await tau(["image", "pull", "127.0.0.1:1/team/app:1", "--user", "ci"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "error: --user and --password-stdin go together");
  assertStringIncludes(r.stderr, 'hint: echo "$PASSWORD" | tau image pull REF --user NAME --password-stdin');
});
