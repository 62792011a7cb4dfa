// Project secrets through the user's entry points (one node; tests/cron_test.ts reads one on every node of a cloud): `tau secret set` reads the value from stdin (never argv), a tau-SDK
// function reads it through its one host call and a WAGI function as an environment variable, both only because
// their config lists it. The value is in no output of tau (ls, deployments, the build log, the function log) and in
// no file of the node's data dir (git repos, the deployment record, the Deno KV files: encrypted at rest). Bad
// inputs: a value on the command line, a bad name, rm of a missing name, a listed secret nobody set.
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./helpers/assert.ts";
import {
  commitAndPush,
  hostRequest,
  MAIN,
  NODE_MODULES_MANUAL,
  startCloud,
  tau,
  tauWithStdin,
  waitForBuild,
} from "./helpers/cloud.ts";

const HOST = "secrets.localtau";
const WAGI = new URL("./fixtures/wagi/secret.wasm", import.meta.url).pathname;
const SDK_FN = `import { Request, Response, secret } from "tau-sdk";

export function sdk(): void {
  const name = new Request().query;
  const value = secret(name);
  new Response().status(200).send(value == null ? "(unset)" : value);
}
`;

/**
 * The CLI on a terminal (a pty made by util-linux `script`): answers the prompt with `typed` once it shows, and
 * returns everything the terminal showed. Undefined when `script` is not installed.
 */
async function tauAtPrompt(args: string[], typed: string): Promise<{ code: number; shown: string } | undefined> {
  const cmd = [Deno.execPath(), "run", "-A", NODE_MODULES_MANUAL, MAIN, ...args].map((a) => `'${a}'`).join(" ");
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("script", { args: ["-qec", cmd, "/dev/null"], stdin: "piped", stdout: "piped" })
      .spawn();
  } catch {
    return undefined;
  }
  const w = child.stdin.getWriter();
  let shown = "";
  let answered = false;
  const dec = new TextDecoder();
  for await (const chunk of child.stdout) {
    shown += dec.decode(chunk, { stream: true });
    if (!answered && shown.includes("(not shown): ")) {
      answered = true;
      await w.write(new TextEncoder().encode(`${typed}\r`));
      await w.close();
    }
  }
  return { code: (await child.status).code, shown };
}

/** Every file under `dir` whose bytes contain `needle`. */
async function filesContaining(dir: string, needle: Uint8Array): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile && indexOf(await Deno.readFile(p), needle) >= 0) found.push(p);
    }
  };
  await walk(dir);
  return found;
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

Deno.test("secrets: set from stdin, read by SDK and WAGI functions that list them, never in logs, records or files", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-secrets-" });
  const data = join(work, "data");
  const cloud = await startCloud(data);
  const value = `tok-${crypto.randomUUID()}`;
  const cli = (args: string[]) => tau([...args, "--cloud", cloud.url], { cwd: work });
  try {
    assertEquals((await cli(["new", "project", "sec"])).code, 0);
    const dir = join(work, "sec");
    for (
      const args of [
        ["new", "domain", "web", "--fqdn", HOST],
        ["new", "function", "sdk", "--paths", "/sdk"],
        ["new", "function", "wagi", "--paths", "/wagi", "--template", "wasm"],
      ]
    ) {
      const r = await tau(args, { cwd: dir });
      assertEquals(r.code, 0, r.stderr);
    }
    for (const fn of ["sdk", "wagi"]) {
      const yaml = join(dir, `config/functions/${fn}.yaml`);
      await Deno.writeTextFile(yaml, `${await Deno.readTextFile(yaml)}secrets: [API_TOKEN, MISSING, TYPED]\n`);
    }
    await Deno.writeTextFile(join(dir, "code/functions/sdk/index.ts"), SDK_FN);
    await Deno.copyFile(WAGI, join(dir, "code/functions/wagi/wagi.wasm"));

    // Bad inputs first: nothing is stored by any of them.
    const onArgv = await tauWithStdin(["secret", "set", "sec", "API_TOKEN", value, "--cloud", cloud.url], "");
    assertEquals(onArgv.code, 1);
    assertMatch(onArgv.stderr, /^error: tau secret set takes no value on the command line/);
    assert(!onArgv.stderr.includes(value), "the refused value is not echoed back");
    const badName = await tauWithStdin(["secret", "set", "sec", "api-token", "--cloud", cloud.url], value);
    assertEquals(badName.code, 1);
    assertStringIncludes(badName.stderr, "'api-token' is not a secret name");
    const empty = await tauWithStdin(["secret", "set", "sec", "API_TOKEN", "--cloud", cloud.url], "\n");
    assertEquals(empty.code, 1);
    assertStringIncludes(empty.stderr, "secret API_TOKEN is empty");
    const big = await tauWithStdin(["secret", "set", "sec", "API_TOKEN", "--cloud", cloud.url], "x".repeat(40_000));
    assertEquals(big.code, 1);
    assertStringIncludes(big.stderr, "a secret holds at most 32768");
    const noProject = await tauWithStdin(["secret", "set", "nope", "API_TOKEN", "--cloud", cloud.url], value);
    assertEquals(noProject.code, 1, noProject.stderr);
    assertEquals(
      (await cli(["secret", "ls", "sec"])).stdout.trim(),
      "sec has no secrets: tau secret set sec NAME adds one",
    );

    const set = await tauWithStdin(["secret", "set", "sec", "API_TOKEN", "--cloud", cloud.url], `${value}\n`);
    assertEquals(set.code, 0, set.stderr);
    assertEquals(set.stdout.trim(), "secret API_TOKEN set for project sec");

    // At a terminal: a prompt that does not echo what is typed.
    const typed = `typed-${crypto.randomUUID()}`;
    const prompted = await tauAtPrompt(["secret", "set", "sec", "TYPED", "--cloud", cloud.url], typed);
    if (prompted === undefined) console.log("skipped the prompt check: util-linux script is not installed");
    else {
      assertEquals(prompted.code, 0, prompted.shown);
      assertStringIncludes(prompted.shown, "value of TYPED (not shown): ");
      assertStringIncludes(prompted.shown, "secret TYPED set for project sec");
      assert(!prompted.shown.includes(typed), `the terminal showed the value: ${JSON.stringify(prompted.shown)}`);
    }

    await waitForBuild(cloud.url, "sec", await commitAndPush(join(dir, "code"), "code"));
    const job = await waitForBuild(cloud.url, "sec", await commitAndPush(join(dir, "config"), "config"));
    assertEquals(job.status, "success", job.error);

    // Read through the host call (SDK) and as an environment variable (WAGI); the trailing newline was dropped.
    assertEquals((await hostRequest(cloud.port, HOST, "/sdk?API_TOKEN")).text, value);
    assertEquals((await hostRequest(cloud.port, HOST, "/wagi?API_TOKEN")).text, value);
    if (prompted) assertEquals((await hostRequest(cloud.port, HOST, "/sdk?TYPED")).text, typed, "what was typed");
    // Listed but not set: nothing to read, and the function's log says what to run.
    assertEquals((await hostRequest(cloud.port, HOST, "/sdk?MISSING")).text, "(unset)");
    assertEquals((await hostRequest(cloud.port, HOST, "/wagi?MISSING")).text, "(unset)");
    const hint = "secret MISSING is not set for project sec: run tau secret set sec MISSING";
    assertEquals(cloud.output().split(hint).length - 1 >= 2, true, cloud.output().slice(-2000));
    // Not listed by the config: the SDK call fails (a trap naming the call), the WAGI env simply lacks it.
    const unlisted = await hostRequest(cloud.port, HOST, "/sdk?OTHER");
    assertEquals(unlisted.status, 500, unlisted.text);
    assertStringIncludes(cloud.output(), "function sdk does not list secret OTHER");
    assertEquals((await hostRequest(cloud.port, HOST, "/wagi?HOME")).text, "(unset)");

    // Names only: ls, deployments, the build log, the node's output (function logs) never carry the value.
    const ls = await cli(["secret", "ls", "sec"]);
    assertEquals(ls.code, 0, ls.stderr);
    assertMatch(ls.stdout.trim(), /^API_TOKEN {2}set \d{4}-\d\d-\d\dT[\d:.]+Z$/m);
    assertEquals(ls.stdout.trim().split("\n").length, prompted ? 2 : 1, ls.stdout);
    const deployments = await cli(["deployments", "sec"]);
    assertEquals(deployments.code, 0, deployments.stderr);
    const buildLog = await cli(["logs", job.id]);
    assertEquals(buildLog.code, 0, buildLog.stderr);
    for (
      const [what, text] of [["ls", ls.stdout], ["deployments", deployments.stdout], ["build log", buildLog.stdout]]
    ) {
      assert(!text.includes(value), `${what} shows the value`);
    }
    assert(!cloud.output().includes(value), "the node's output (function logs) shows the value");
    // Every file of the node: the git repos, Helia's blocks (the deployment record), the Deno KV files.
    const leaks = await filesContaining(data, new TextEncoder().encode(value));
    assertEquals(leaks, [], "files holding the value in plain text");
    assertEquals(await filesContaining(data, new TextEncoder().encode(typed)), [], "files holding the typed value");
    // The deployment record (JSON in Helia's blockstore) names the secrets, and only names.
    const named = await filesContaining(
      join(data, "storage"),
      new TextEncoder().encode('"secrets":["API_TOKEN","MISSING","TYPED"]'),
    );
    assert(named.length > 0, "the deployment record lists the names");
    const keyMode = (await Deno.stat(join(data, "secrets.key"))).mode! & 0o777;
    assertEquals(keyMode, 0o600);

    // rm: a missing name is one clear error; a set one goes, and the function sees it unset at once.
    const rmMissing = await cli(["secret", "rm", "sec", "NOPE"]);
    assertEquals(rmMissing.code, 1);
    assertEquals(rmMissing.stderr.trim().split("\n")[0], "error: secret NOPE is not set for project sec");
    for (const name of prompted ? ["API_TOKEN", "TYPED"] : ["API_TOKEN"]) {
      const rm = await cli(["secret", "rm", "sec", name]);
      assertEquals(rm.code, 0, rm.stderr);
    }
    assertEquals((await hostRequest(cloud.port, HOST, "/sdk?API_TOKEN")).text, "(unset)");
    assertEquals(
      (await cli(["secret", "ls", "sec"])).stdout.trim(),
      "sec has no secrets: tau secret set sec NAME adds one",
    );
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true });
  }
});
