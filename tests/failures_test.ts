/**
 * What users get wrong, through the same entry points they use: functions that trap, loop or eat memory (the node
 * keeps serving), webhooks with bad signatures (nothing is built), mirrored repos fed by a signed webhook from another
 * git host, and a disk that fills up (clear build error; what was live stays live).
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { commitAndPush, hostRequest, sh, startCloud, tau, waitForBuild } from "./helpers/cloud.ts";

const FIXTURES = new URL("./fixtures/wagi/", import.meta.url).pathname;

const PING = `import { Response } from "tau-sdk";
export function ping(): void { new Response().send("pong"); }
`;
const SPIN = `let counter: i64 = 0;
export function spin(): void { while (true) { counter++; } }
`;
const HOG = `const kept: Array<Uint8Array> = [];
export function hog(): void { while (true) { kept.push(new Uint8Array(1 << 20)); } }
`;

async function newProject(cloudUrl: string, work: string, name: string, extra: string[] = []) {
  const r = await tau(["new", "project", name, "--cloud", cloudUrl, ...extra], { cwd: work });
  assertEquals(r.code, 0, r.stderr);
  return join(work, name);
}

async function inProject(project: string, args: string[]) {
  const r = await tau(args, { cwd: project });
  assertEquals(r.code, 0, `tau ${args.join(" ")}: ${r.stderr}`);
}

async function sign(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return "sha256=" + [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// One cloud for both the bad inputs and the mirrored project: a cloud start and a first compile less (suite time).
Deno.test("bad functions and bad webhooks: clear errors, and nothing deployed is lost", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "tau-fail-" });
  const cloud = await startCloud(join(work, "data"));
  const host = "api.bad.localtau";
  try {
    const project = await newProject(cloud.url, work, "bad_inputs");
    const code = join(project, "code");
    await inProject(project, ["new", "domain", "api", "--fqdn", host]);
    await inProject(project, ["new", "function", "ping", "--paths", "/ping"]);
    await inProject(project, ["new", "function", "spin", "--paths", "/spin", "--timeout", "300ms"]);
    await inProject(project, ["new", "function", "hog", "--paths", "/hog", "--memory", "2MB"]);
    await inProject(project, ["new", "function", "crash", "--paths", "/crash", "--template", "wasm"]);
    await inProject(project, [
      "new",
      "function",
      "loop",
      "--paths",
      "/loop",
      "--template",
      "wasm",
      "--timeout",
      "400ms",
    ]);
    await Deno.writeTextFile(join(code, "functions/ping/index.ts"), PING);
    await Deno.writeTextFile(join(code, "functions/spin/index.ts"), SPIN);
    await Deno.writeTextFile(join(code, "functions/hog/index.ts"), HOG);
    await Deno.copyFile(join(FIXTURES, "trap.wasm"), join(code, "functions/crash/crash.wasm"));
    await Deno.copyFile(join(FIXTURES, "loop.wasm"), join(code, "functions/loop/loop.wasm"));
    await waitForBuild(cloud.url, "bad_inputs", await commitAndPush(code, "code"));
    const job = await waitForBuild(cloud.url, "bad_inputs", await commitAndPush(join(project, "config"), "config"));
    assertEquals(job.status, "success", job.error);
    const get = (path: string) => hostRequest(cloud.port, host, path);
    assertEquals((await get("/ping")).text, "pong");

    await t.step("a trapping function answers 500 with a request id; its stderr reaches the log", async () => {
      const r = await get("/crash");
      assertEquals(r.status, 500);
      const id = r.headers.get("x-request-id");
      assert(id, "x-request-id header");
      assertStringIncludes(r.text, `function crash failed (request ${id})`);
      for (let i = 0; i < 100 && !cloud.output().includes("about to trap"); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assertStringIncludes(cloud.output(), "about to trap");
    });

    await t.step("an infinite loop answers 504 while other requests keep being served", async () => {
      for (const path of ["/loop", "/spin"]) {
        const order: string[] = [];
        const looping = get(path).then((r) => {
          order.push("loop");
          return r;
        });
        await new Promise((r) => setTimeout(r, 50));
        const ping = await get("/ping");
        order.push("ping");
        assertEquals(ping.text, "pong");
        const r = await looping;
        assertEquals(r.status, 504, r.text);
        assertStringIncludes(r.text, "timed out after");
        assertEquals(order, ["ping", "loop"], `${path}: ping must not wait for the loop`);
      }
      // Still 504 the second time (now on an executor), and the rest still answers.
      assertEquals((await get("/spin")).status, 504);
      assertEquals((await get("/ping")).text, "pong");
    });

    await t.step("growing memory past execution.memory traps with 500", async () => {
      const r = await get("/hog");
      assertEquals(r.status, 500, r.text);
      assertEquals((await get("/ping")).text, "pong");
    });

    await t.step("a webhook with a wrong or missing signature is rejected and builds nothing", async () => {
      const before = (await (await fetch(`${cloud.url}/api/builds?project=bad_inputs`)).json()).length;
      const head = (await sh("git", ["rev-parse", "HEAD"], code)).stdout.trim();
      const body = JSON.stringify({ ref: "refs/heads/main", after: head, repository: { name: "code" } });
      for (const signature of [undefined, "sha256=" + "0".repeat(64), await sign("wrong secret", body)]) {
        const res = await fetch(`${cloud.url}/api/webhooks/git/bad_inputs`, {
          method: "POST",
          body,
          headers: signature ? { "x-hub-signature-256": signature } : {},
        });
        assertEquals(res.status, 401);
        assertStringIncludes((await res.json()).error, "rejected");
      }
      const after = (await (await fetch(`${cloud.url}/api/builds?project=bad_inputs`)).json()).length;
      assertEquals(after, before);
      assertEquals((await get("/ping")).text, "pong");

      const secret = (await (await fetch(`${cloud.url}/api/projects/bad_inputs`)).json()).webhook.secret;
      const ok = await fetch(`${cloud.url}/api/webhooks/git/bad_inputs`, {
        method: "POST",
        body,
        headers: { "x-hub-signature-256": await sign(secret, body) },
      });
      assertEquals(ok.status, 202);
      const { job: queued } = await ok.json();
      const done = await (await fetch(`${cloud.url}/api/builds/${queued.id}?wait=1`)).json();
      assertEquals(done.status, "success", done.error);
      assertEquals(done.source, "webhook");
    });

    // The same cloud: a second project, fed from another git host, beside the first.
    await t.step("a project mirrored from another git host builds on its signed webhook", async () => {
      // The "other git host": bare repos served read-only over git's dumb HTTP protocol by a static file server.
      const external = join(work, "external");
      const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
        const path = join(external, decodeURIComponent(new URL(req.url).pathname));
        try {
          return new Response(await Deno.readFile(path));
        } catch {
          return new Response("not found", { status: 404 });
        }
      });
      const base = `http://127.0.0.1:${server.addr.port}`;
      try {
        const seed = join(work, "seed");
        for (const repo of ["config", "code"]) {
          await sh("git", ["init", "-q", "--bare", "--initial-branch=main", join(external, `${repo}.git`)]);
          await Deno.mkdir(join(seed, repo), { recursive: true });
          await sh("git", ["init", "-q", "--initial-branch=main"], join(seed, repo));
        }
        await Deno.writeTextFile(join(seed, "config/config.yaml"), "name: mirrored\ndescription: from elsewhere\n");
        await Deno.mkdir(join(seed, "config/domains"));
        await Deno.writeTextFile(join(seed, "config/domains/web.yaml"), "fqdn: mirror.localtau\n");
        await Deno.mkdir(join(seed, "config/functions"));
        await Deno.writeTextFile(
          join(seed, "config/functions/ping.yaml"),
          "source: .\ntrigger:\n  type: https\n  method: GET\n  paths: [/ping]\n  domains: [web]\n",
        );
        await Deno.mkdir(join(seed, "code/functions/ping"), { recursive: true });
        await Deno.writeTextFile(join(seed, "code/functions/ping/index.ts"), PING);
        const publish = async (repo: string) => {
          await sh("git", ["add", "-A"], join(seed, repo));
          await sh("git", ["commit", "-q", "-m", "change"], join(seed, repo));
          await sh("git", ["push", "-q", join(external, `${repo}.git`), "HEAD:main"], join(seed, repo));
          await sh("git", ["update-server-info"], join(external, `${repo}.git`));
          return (await sh("git", ["rev-parse", "HEAD"], join(seed, repo))).stdout.trim();
        };
        await publish("config");
        const codeCommit = await publish("code");

        await newProject(cloud.url, work, "mirrored", [
          "--config-upstream",
          `${base}/config.git`,
          "--code-upstream",
          `${base}/code.git`,
        ]);
        const project = await (await fetch(`${cloud.url}/api/projects/mirrored`)).json();
        const hook = async (repo: string, commit: string) => {
          const body = JSON.stringify({
            ref: "refs/heads/main",
            after: commit,
            repository: { name: repo, clone_url: `${base}/${repo}.git` },
          });
          const res = await fetch(project.webhook.url, {
            method: "POST",
            body,
            headers: { "x-hub-signature-256": await sign(project.webhook.secret, body) },
          });
          assertEquals(res.status, 202, await res.clone().text());
          const { job } = await res.json();
          return await (await fetch(`${cloud.url}/api/builds/${job.id}?wait=1`)).json();
        };
        assertEquals((await hook("code", codeCommit)).status, "success");
        assertEquals((await hostRequest(cloud.port, "mirror.localtau", "/ping")).text, "pong");

        // A new commit upstream arrives through the webhook alone.
        await Deno.writeTextFile(join(seed, "code/functions/ping/index.ts"), PING.replace("pong", "pong 2"));
        const second = await publish("code");
        const job = await hook("code", second);
        assertEquals(job.status, "success", job.error);
        assertEquals((await hostRequest(cloud.port, "mirror.localtau", "/ping")).text, "pong 2");

        // A commit the upstream does not have: clear 422, nothing changes.
        const body = JSON.stringify({ ref: "refs/heads/main", after: "a".repeat(40), repository: { name: "code" } });
        const res = await fetch(project.webhook.url, {
          method: "POST",
          body,
          headers: { "x-hub-signature-256": await sign(project.webhook.secret, body) },
        });
        assertEquals(res.status, 422);
        assertStringIncludes((await res.json()).error, "is not in mirrored/code");
        assertEquals((await hostRequest(cloud.port, "mirror.localtau", "/ping")).text, "pong 2");
      } finally {
        await server.shutdown();
      }
    });
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});

const isRoot = Deno.uid() === 0;

Deno.test({
  name: isRoot
    ? "a full disk fails the build clearly and keeps the live deployment"
    : "a full disk fails the build clearly (SKIPPED: needs root to mount a small tmpfs)",
  ignore: !isRoot,
  fn: async () => {
    const work = await Deno.makeTempDir({ prefix: "tau-disk-" });
    const data = join(work, "data");
    await Deno.mkdir(data);
    await sh("mount", ["-t", "tmpfs", "-o", "size=48m", "tau-test-disk", data]);
    let cloud;
    try {
      cloud = await startCloud(data);
      const project = await newProject(cloud.url, work, "full_disk");
      const code = join(project, "code");
      await inProject(project, ["new", "domain", "web", "--fqdn", "disk.localtau"]);
      await inProject(project, ["new", "website", "site", "--paths", "/"]);
      await Deno.writeTextFile(join(code, "websites/site/index.html"), "v1");
      await waitForBuild(cloud.url, "full_disk", await commitAndPush(code, "v1"));
      const ok = await waitForBuild(cloud.url, "full_disk", await commitAndPush(join(project, "config"), "v1"));
      assertEquals(ok.status, "success", ok.error);

      // 30 MB that git cannot compress: the push fits, storing it again as content does not.
      const big = new Uint8Array(30 << 20);
      for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
      await Deno.writeFile(join(code, "websites/site/big.bin"), big);
      await Deno.writeTextFile(join(code, "websites/site/index.html"), "v2");
      const job = await waitForBuild(cloud.url, "full_disk", await commitAndPush(code, "too big"));
      assertEquals(job.status, "failed");
      assertStringIncludes(job.error, "disk full");
      assertEquals((await hostRequest(cloud.port, "disk.localtau", "/")).text, "v1");

      // Shrinking the push recovers without any manual repair.
      await Deno.remove(join(code, "websites/site/big.bin"));
      const fixed = await waitForBuild(cloud.url, "full_disk", await commitAndPush(code, "smaller"));
      assertEquals(fixed.status, "success", fixed.error);
      assertEquals((await hostRequest(cloud.port, "disk.localtau", "/")).text, "v2");
    } finally {
      await cloud?.stop();
      await sh("umount", [data]).catch(() => sh("umount", ["-l", data]));
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
