/**
 * The local cloud end to end, the way a user drives it: `tau dev`, `tau new ...`, plain `git push`, requests with a
 * Host header, `tau builds`, `tau logs`, `tau rollback`, a restart. One cloud per test file keeps the suite fast.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { commitAndPush, hostRequest, sh, startCloud, tau, waitForBuild } from "./helpers/cloud.ts";
import type { NodeMemory } from "../services/node_memory.ts";

const HOST = "api.hello.localtau";
const WAGI_WASM = new URL("./fixtures/wagi/hello.wasm", import.meta.url).pathname;
/** Keeps each request body on its heap and prints what the previous request left there (tests/fixtures/wagi). */
const WAGI_LEAK = new URL("./fixtures/wagi/leak.wasm", import.meta.url).pathname;

const SDK_PING = `import { Request, Response } from "tau-sdk";

export function ping(): void {
  const req = new Request();
  new Response().status(200).header("content-type", "text/plain").send("pong " + req.method + " VERSION");
}
`;

Deno.test("local cloud: git push -> build -> TNS -> gateway, failures, rollback, restart", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "tau-e2e-" });
  const data = join(work, "data");
  let cloud = await startCloud(data);
  const project = join(work, "hello_world");
  const config = join(project, "config");
  const code = join(project, "code");
  const cli = (args: string[]) => tau([...args, "--cloud", cloud.url], { cwd: project });
  const get = (path: string, init: Parameters<typeof hostRequest>[3] = {}) => hostRequest(cloud.port, HOST, path, init);
  const memoryCli = (args: string[]) => tau(["memory", ...args, "--cloud", cloud.url], { cwd: work });
  const memory = async () => JSON.parse((await memoryCli(["--json"])).stdout) as NodeMemory;
  try {
    await t.step("tau memory: a node that has served nothing runs no Worker and no helper", async () => {
      const r = await memoryCli([]);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stdout, /^node \(pid \d+\): [\d.]+ MB PSS \(private [\d.]+ MB, RSS [\d.]+ MB\)$/m);
      assertMatch(r.stdout, /main isolate heap: [\d.]+ MB used of [\d.]+ MB/);
      assertStringIncludes(r.stdout, "workers in the node process: none");
      const m = await memory();
      assertEquals(m.pid, cloud.pid);
      assertEquals(m.workers, { executors: 0, watchdog: false });
      assertEquals(m.children, []);
      assert(Number.isInteger(m.trims), JSON.stringify(m));
      assert(m.node!.pssBytes > 0 && m.totalPssBytes === m.node!.pssBytes);
      const nodes = await tau(["nodes", "--cloud", cloud.url], { cwd: work });
      assertMatch(nodes.stdout, /^local {2}dev {2}.* free, \d+M RSS$/m);
    });

    await t.step("tau new project creates and clones both repos", async () => {
      const r = await tau(["new", "project", "hello_world", "--cloud", cloud.url], { cwd: work });
      assertEquals(r.code, 0, r.stderr);
      assert((await Deno.stat(join(config, "config.yaml"))).isFile);
      assert((await Deno.stat(join(code, ".git"))).isDirectory);
      const again = await tau(["new", "project", "hello_world", "--cloud", cloud.url, "--dir", join(work, "x")]);
      assertEquals(again.code, 1);
      assertStringIncludes(again.stderr, "already exists");
    });

    let firstConfig = "";
    await t.step("scaffold, validate, push: function (SDK), WAGI function, website answer", async () => {
      for (
        const args of [
          ["new", "domain", "hello", "--fqdn", HOST],
          ["new", "function", "ping", "--domains", "hello", "--paths", "/ping"],
          [
            "new",
            "function",
            "echo",
            "--domains",
            "hello",
            "--paths",
            "/echo/:name",
            "--method",
            "POST",
            "--template",
            "wasm",
          ],
          [
            "new",
            "function",
            "leak",
            "--domains",
            "hello",
            "--paths",
            "/leak",
            "--method",
            "POST",
            "--template",
            "wasm",
          ],
          ["new", "website", "site", "--domains", "hello", "--paths", "/"],
        ]
      ) {
        const r = await tau(args, { cwd: project });
        assertEquals(r.code, 0, r.stderr);
      }
      await Deno.writeTextFile(join(code, "functions/ping/index.ts"), SDK_PING.replace("VERSION", "v1"));
      await Deno.copyFile(WAGI_WASM, join(code, "functions/echo/echo.wasm"));
      await Deno.copyFile(WAGI_LEAK, join(code, "functions/leak/leak.wasm"));
      await Deno.writeTextFile(join(code, "websites/site/about.html"), "<h1>about</h1>");
      const v = await tau(["validate"], { cwd: project });
      assertEquals(v.code, 0, v.stderr);
      assertStringIncludes(v.stdout, "config OK");

      const codeCommit = await commitAndPush(code, "code v1");
      await waitForBuild(cloud.url, "hello_world", codeCommit);
      firstConfig = await commitAndPush(config, "config v1");
      const job = await waitForBuild(cloud.url, "hello_world", firstConfig);
      assertEquals(job.status, "success", job.error);
      // The build ran in the compiler helper (retired only after 120 s idle), and deploying functions started the
      // serving thread's watchdog before their first request.
      const built = await memory();
      assertEquals(built.workers.watchdog, true);
      const helper = built.children.find((c) => c.kind === "helper build");
      assert(helper && helper.pssBytes > 0, JSON.stringify(built.children));
      assertStringIncludes((await memoryCli([])).stdout, "helper build (pid");

      const ping = await get("/ping");
      assertEquals(ping.status, 200);
      assertEquals(ping.text, "pong GET v1");
      const echo = await get("/echo/world?x=1", { method: "POST", body: "hi there" });
      assertEquals(echo.status, 200, echo.text);
      assertStringIncludes(echo.text, "hi there");
      assertStringIncludes(echo.text, "/echo/world");
      const home = await get("/");
      assertEquals(home.status, 200);
      assertEquals(home.headers.get("content-type"), "text/html; charset=utf-8");
      const about = await get("/about");
      assertEquals(about.text, "<h1>about</h1>");
      const etag = about.headers.get("etag")!;
      assertEquals((await get("/about.html", { headers: { "If-None-Match": etag } })).status, 304);
      const range = await get("/about.html", { headers: { Range: "bytes=0-3" } });
      assertEquals(range.status, 206);
      assertEquals(range.text, "<h1>");
      const missing = await get("/nope.css");
      assertEquals(missing.status, 404);
      assert(missing.headers.get("x-request-id"));
      const unknownHost = await hostRequest(cloud.port, "nobody.localtau", "/");
      assertEquals(unknownHost.status, 404);
      assertMatch(unknownHost.text, /no project serves host nobody\.localtau \(request .+\)/);
    });

    await t.step("a WAGI function: no request sees what the one before it left on the heap", async () => {
      for (const body of ["alice's secret", "bob's secret", "carol"]) {
        const r = await get("/leak", { method: "POST", body });
        assertEquals(r.status, 200, r.text);
        assertEquals(r.text, "calls=0 last=(none)\n");
      }
    });

    await t.step("tau builds and tau logs show the jobs", async () => {
      const builds = await cli(["builds", "hello_world"]);
      assertEquals(builds.code, 0, builds.stderr);
      assertStringIncludes(builds.stdout, "success");
      const id = builds.stdout.split("\n")[0].split(/\s+/)[0];
      const logs = await cli(["logs", id]);
      assertEquals(logs.code, 0, logs.stderr);
      assertStringIncludes(logs.stdout, "function ping");
    });

    await t.step("broken YAML fails the build with a clear log; what was live stays live", async () => {
      await Deno.writeTextFile(join(config, "functions/ping.yaml"), "trigger: [unclosed\n  bad: : yaml\n");
      const commit = await commitAndPush(config, "broken yaml");
      const job = await waitForBuild(cloud.url, "hello_world", commit);
      assertEquals(job.status, "failed");
      assertStringIncludes(job.error, "functions/ping.yaml");
      const logs = await cli(["logs", job.id]);
      assertStringIncludes(logs.stdout, "still live");
      assertEquals((await get("/ping")).text, "pong GET v1");
      await sh("git", ["revert", "--no-edit", "HEAD"], config);
      await sh("git", ["push", "-q", "origin", "HEAD:main"], config);
    });

    await t.step("code that does not compile fails the build; the old version keeps answering", async () => {
      await Deno.writeTextFile(join(code, "functions/ping/index.ts"), "export function ping(): void { nope( }\n");
      const commit = await commitAndPush(code, "broken code");
      const job = await waitForBuild(cloud.url, "hello_world", commit);
      assertEquals(job.status, "failed");
      assertStringIncludes(job.error, "does not compile");
      assertEquals((await get("/ping")).text, "pong GET v1");
    });

    await t.step("a missing code folder fails the build with the path to add", async () => {
      await Deno.writeTextFile(join(code, "functions/ping/index.ts"), SDK_PING.replace("VERSION", "v1"));
      await Deno.remove(join(code, "websites/site"), { recursive: true });
      const commit = await commitAndPush(code, "remove website files");
      const job = await waitForBuild(cloud.url, "hello_world", commit);
      assertEquals(job.status, "failed");
      assertStringIncludes(job.error, "websites/site/");
      assertEquals((await get("/about")).text, "<h1>about</h1>");
    });

    let v2Code = "";
    await t.step("a good push goes live; rollback flips back; rollback --to flips forward", async () => {
      await Deno.mkdir(join(code, "websites/site"), { recursive: true });
      await Deno.writeTextFile(join(code, "websites/site/index.html"), "<h1>v2</h1>");
      await Deno.writeTextFile(join(code, "functions/ping/index.ts"), SDK_PING.replace("VERSION", "v2"));
      v2Code = await commitAndPush(code, "v2");
      const job = await waitForBuild(cloud.url, "hello_world", v2Code);
      assertEquals(job.status, "success", job.error);
      assertEquals((await get("/ping")).text, "pong GET v2");

      const back = await cli(["rollback", "hello_world"]);
      assertEquals(back.code, 0, back.stderr);
      assertEquals((await get("/ping")).text, "pong GET v1");
      const forward = await cli(["rollback", "hello_world", "--to", v2Code.slice(0, 10)]);
      assertEquals(forward.code, 0, forward.stderr);
      assertEquals((await get("/ping")).text, "pong GET v2");
      const bad = await cli(["rollback", "hello_world", "--to", "deadbeef"]);
      assertEquals(bad.code, 1);
      assertStringIncludes(bad.stderr, "no deployment");
    });

    await t.step("a restart serves everything deployed without rebuilding", async () => {
      const before = (await (await fetch(`${cloud.url}/api/builds?project=hello_world`)).json()).length;
      await cloud.stop();
      cloud = await startCloud(data);
      // It serves functions: the watchdog is up before their first request; nothing was built, so no helper.
      const restarted = await memory();
      assertEquals(restarted.workers.watchdog, true);
      assertEquals(restarted.children.filter((c) => c.kind.startsWith("helper")), []);
      // The new process listens on another free port: point the clones at it.
      for (const repo of ["config", "code"]) {
        await sh(
          "git",
          ["remote", "set-url", "origin", `${cloud.url}/git/hello_world/${repo}.git`],
          join(project, repo),
        );
      }
      assertEquals((await get("/ping")).text, "pong GET v2");
      assertEquals((await get("/")).text, "<h1>v2</h1>");
      const after = (await (await fetch(`${cloud.url}/api/builds?project=hello_world`)).json()).length;
      assertEquals(after, before);
    });

    await t.step("concurrent pushes never leave a half-deployed project", async () => {
      await Deno.writeTextFile(join(code, "functions/ping/index.ts"), SDK_PING.replace("VERSION", "v3"));
      await Deno.writeTextFile(join(code, "websites/site/index.html"), "<h1>v3</h1>");
      await sh("git", ["add", "-A"], code);
      await sh("git", ["commit", "-q", "-m", "v3"], code);
      await Deno.writeTextFile(
        join(config, "config.yaml"),
        (await Deno.readTextFile(join(config, "config.yaml"))) +
          "# touched\n",
      );
      await sh("git", ["commit", "-q", "-am", "touch"], config);
      await Promise.all([
        sh("git", ["push", "-q", "origin", "HEAD:main"], code),
        sh("git", ["push", "-q", "origin", "HEAD:main"], config),
      ]);
      const codeHead = (await sh("git", ["rev-parse", "HEAD"], code)).stdout.trim();
      const configHead = (await sh("git", ["rev-parse", "HEAD"], config)).stdout.trim();
      const jobs = await Promise.all([
        waitForBuild(cloud.url, "hello_world", codeHead),
        waitForBuild(cloud.url, "hello_world", configHead),
      ]);
      for (const j of jobs) assertEquals(j.status, "success", j.error);
      // Function and website always come from the same deployment.
      assertEquals((await get("/ping")).text, "pong GET v3");
      assertEquals((await get("/")).text, "<h1>v3</h1>");
    });
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
