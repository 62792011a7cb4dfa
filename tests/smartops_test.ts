// Smartops through a deployed project: code that runs before the resources tagged `smartops:<name>` and decides
// whether the call goes ahead. One smartop lets a request through only with the right key (a function and a website
// guarded by it), one guards a p2p command on its data; one traps and one loops past its timeout: both deny (fail
// closed), never let the call through.
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
// Guards an event function: decides on the command's data (the body of the HTTP-shaped input) and the event kind.
const BODY_CHECK = `import { Request, Response } from "tau-sdk";
export function check(): void {
  const req = new Request();
  const kind = req.header("x-tau-event");
  if (req.text() == "let me in" && kind != null && kind == "smartop") new Response().status(204).send("");
  else new Response().status(403).send("the door stays shut for " + req.text());
}
`;
const DOOR = `import { Request, Response } from "tau-sdk";
export function door(): void {
  new Response().status(200).send("opened for " + new Request().text());
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
    await Deno.mkdir(join(config, "services"), { recursive: true });
    await Deno.writeTextFile(join(config, "services/door.yaml"), "description: a door\ntags: []\nprotocol: /door/v1\n");
    await Deno.writeTextFile(
      join(config, "functions/door.yaml"),
      "description: opens\ntags: [smartops:body_check]\nsource: .\ntrigger:\n  type: p2p\n  protocol: /door/v1\n" +
        "  command: open\nexecution:\n  timeout: 5s\n  memory: 16MB\n  call: door\n",
    );
    await Deno.mkdir(join(dir, "code/functions/door"), { recursive: true });
    await Deno.writeTextFile(join(dir, "code/functions/door/index.ts"), DOOR);
    const smartopCode = [
      ["key_check", KEY_CHECK, "2s"],
      ["body_check", BODY_CHECK, "2s"],
      ["traps", TRAPS, "2s"],
      ["loops", LOOPS, "300ms"],
    ];
    for (const [name, code, timeout] of smartopCode) {
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

    // An event function (a p2p command) is guarded the same way: the smartop sees the command's data.
    const call = (data: string) => tau(["call", "guarded", "/door/v1", "open", "--data", data, "--cloud", cloud.url]);
    const shut = await call("nope");
    assertEquals(shut.code, 1, shut.stdout);
    assertStringIncludes(shut.stderr, "denied by smartop body_check: the door stays shut for nope");
    const opened = await call("let me in");
    assertEquals([opened.code, opened.stdout], [0, "opened for let me in"], opened.stderr);

    // The node keeps serving, and what the function stored is intact.
    const again = await hostRequest(cloud.port, HOST, "/count", { headers: { "x-api-key": "open-sesame" } });
    assertEquals(again.text, "hits 2");
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
