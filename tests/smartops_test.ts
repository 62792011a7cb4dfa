// Smartops through a deployed project: code that runs before the resources tagged `smartops:<name>` and decides
// whether the call goes ahead. One smartop lets a request through only with the right key (a function and a website
// guarded by it); one traps and one loops past its timeout: both deny (fail closed), never let the call through.
// Nothing the guarded function stores happens when it is denied.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { commitAndPush, hostRequest, startCloud, tau, waitForBuild } from "./helpers/cloud.ts";

const HOST = "guard.localtau";

const KEY_CHECK = `import { Request, Response } from "tau-sdk";
export function check(): void {
  const req = new Request();
  const key = req.header("x-api-key");
  const what = req.header("x-tau-resource");
  if (key != null && key == "open-sesame") {
    new Response().status(200).send("ok");
  } else {
    new Response().status(401).send("wrong or missing x-api-key for " + (what == null ? "?" : what) + "\\nsecond line");
  }
}
`;
const TRAPS = `export function check(): void { unreachable(); }\n`;
const LOOPS = `export function check(): void { let i: i32 = 0; while (i >= 0) { i = (i + 1) & 0xffff; } }\n`;
const COUNTER = `import { Request, Response, Globals } from "tau-sdk";
export function counter(): void {
  const seen = Globals.get("hits");
  const n = seen == null ? 1 : parseInt(String.UTF8.decode(seen.buffer)) as i32 + 1;
  Globals.put("hits", Uint8Array.wrap(String.UTF8.encode(n.toString())));
  new Response().status(200).send("hits " + n.toString());
}
`;

Deno.test("smartops: a key check guards a function and a website; a smartop that traps or times out denies", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-smartops-" });
  const cloud = await startCloud(join(work, "data"));
  try {
    assertEquals((await tau(["new", "project", "guarded", "--cloud", cloud.url], { cwd: work })).code, 0);
    const dir = join(work, "guarded");
    for (
      const args of [
        ["new", "domain", "web", "--fqdn", HOST],
        ["new", "function", "counter", "--paths", "/count", "--domains", "web"],
        ["new", "function", "trapped", "--paths", "/trapped", "--domains", "web"],
        ["new", "function", "looped", "--paths", "/looped", "--domains", "web"],
        ["new", "function", "open", "--paths", "/open", "--domains", "web"],
        ["new", "website", "docs", "--domains", "web", "--paths", "/docs"],
      ]
    ) {
      const r = await tau(args, { cwd: dir });
      assertEquals(r.code, 0, r.stderr);
    }
    const config = join(dir, "config");
    const tag = async (file: string, tags: string) => {
      const path = join(config, file);
      await Deno.writeTextFile(path, (await Deno.readTextFile(path)).replace(/^tags:.*$/m, "") + `tags: [${tags}]\n`);
    };
    await tag("functions/counter.yaml", "smartops:key_check");
    await tag("websites/docs.yaml", "smartops:key_check");
    await tag("functions/trapped.yaml", "smartops:traps");
    await tag("functions/looped.yaml", "smartops:loops");
    for (
      const [name, code, timeout] of [["key_check", KEY_CHECK, "2s"], ["traps", TRAPS, "2s"], ["loops", LOOPS, "300ms"]]
    ) {
      await Deno.mkdir(join(config, "smartops"), { recursive: true });
      await Deno.writeTextFile(
        join(config, "smartops", `${name}.yaml`),
        `id: ""\ndescription: guard\nsource: .\nexecution:\n  timeout: ${timeout}\n  memory: 16MB\n  call: check\n`,
      );
      await Deno.mkdir(join(dir, "code/smartops", name), { recursive: true });
      await Deno.writeTextFile(join(dir, "code/smartops", name, "index.ts"), code);
    }
    await Deno.writeTextFile(join(dir, "code/functions/counter/index.ts"), COUNTER);
    await waitForBuild(cloud.url, "guarded", await commitAndPush(join(dir, "code"), "smartops code"));
    const job = await waitForBuild(cloud.url, "guarded", await commitAndPush(config, "smartops"));
    assertEquals(job.status, "success", job.error);

    // Denied: 403 with the smartop's reason (its first line), and the function did not run.
    const denied = await hostRequest(cloud.port, HOST, "/count");
    assertEquals(denied.status, 403, denied.text);
    assertStringIncludes(denied.text, "denied by smartop key_check: wrong or missing x-api-key for function/counter");
    assert(!denied.text.includes("second line"), denied.text);
    const wrong = await hostRequest(cloud.port, HOST, "/count", { headers: { "x-api-key": "guess" } });
    assertEquals(wrong.status, 403);
    // Allowed: the function runs, and it is its first run (the denied calls never reached it).
    const ok = await hostRequest(cloud.port, HOST, "/count", { headers: { "x-api-key": "open-sesame" } });
    assertEquals([ok.status, ok.text], [200, "hits 1"]);

    // The website is guarded by the same smartop.
    assertEquals((await hostRequest(cloud.port, HOST, "/docs/")).status, 403);
    const page = await hostRequest(cloud.port, HOST, "/docs/", { headers: { "x-api-key": "open-sesame" } });
    assertEquals(page.status, 200, page.text);
    assertStringIncludes(page.text, "<h1>docs</h1>");
    // An unguarded function answers as before.
    assertEquals((await hostRequest(cloud.port, HOST, "/open")).status, 200);

    // Fail closed: a smartop that traps, and one that runs past its timeout, deny the call.
    const trapped = await hostRequest(cloud.port, HOST, "/trapped", { headers: { "x-api-key": "open-sesame" } });
    assertEquals(trapped.status, 403, trapped.text);
    assertStringIncludes(trapped.text, "smartop traps trapped, so the call is denied");
    const looped = await hostRequest(cloud.port, HOST, "/looped");
    assertEquals(looped.status, 403, looped.text);
    assertStringIncludes(looped.text, "smartop loops timed out, so the call is denied");
    // Each denial is a line in the smartop's log (tau dev prints function logs).
    assertStringIncludes(cloud.output(), "denied function/counter: wrong or missing x-api-key");

    // The node keeps serving, and what the function stored is intact.
    const again = await hostRequest(cloud.port, HOST, "/count", { headers: { "x-api-key": "open-sesame" } });
    assertEquals(again.text, "hits 2");
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
