/**
 * Containers deployed through git and served by the gateway, the way a user drives it: `tau image import`,
 * `containers/web.yaml` in the config repo, `git push`, requests with a Host header, `tau container ls`.
 * Covers a redeploy under load (no failed request), broken deploys (the old version keeps serving), a config-only
 * change (the container is kept), rollback, a clean restart and a kill -9 of the node (containers adopted).
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { commitAndPush, hostRequest, startCloud, tau, waitForBuild } from "./helpers/cloud.ts";
import { busyboxLayer, tar, writeOciLayout } from "./container/fixture.ts";
import { assertNoLeaks, skipReason } from "./container/harness.ts";
import type { ContainerRecord } from "../runtime/container/records.ts";

const SKIP = await skipReason();
const HOST = "web.shop.localtau";
const UNIXGET_C = new URL("./fixtures/unixget/unixget.c", import.meta.url).pathname;

/** busybox httpd serving $GREETING at / and a CGI that echoes the request at /cgi-bin/echo. */
function webYaml(greeting: string, extra = ""): string {
  return `description: the shop's web server
container: busybox:latest
port: 8080
env:
  GREETING: ${greeting}
  ECHO_CGI: |
    #!/bin/sh
    echo "Content-Type: text/plain"
    echo ""
    echo "method=$REQUEST_METHOD host=$HTTP_HOST uri=$REQUEST_URI greeting=$GREETING"
    head -c "$CONTENT_LENGTH"
command:
  - sh
  - -c
  - >-
    mkdir -p /srv/cgi-bin && echo "$GREETING" > /srv/index.html &&
    echo "$ECHO_CGI" > /srv/cgi-bin/echo && chmod +x /srv/cgi-bin/echo &&
    exec httpd -f -v -p 8080 -h /srv
limits: {memory: 32MB, pids: 32}
domains: [shop]
paths: [/]
${extra}`;
}

async function records(data: string): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = [];
  const dir = join(data, "containers/run");
  if (!(await Deno.stat(dir).then(() => true, () => false))) return out;
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".")) continue;
    const text = await Deno.readTextFile(join(dir, e.name, "container.json")).catch(() => null);
    if (text) out.push(JSON.parse(text));
  }
  return out;
}

/** `tau container ls` rows of running containers: [id, name]. */
async function running(data: string): Promise<string[][]> {
  const r = await tau(["container", "ls", "--data", join(data, "containers")]);
  assertEquals(r.code, 0, r.stderr);
  return r.stdout.trim().split("\n").slice(1).map((l) => l.split(/\s+/)).filter((c) => c[3] === "running")
    .map((c) => [c[0], c[1]]);
}

/** Waits (bounded) until `tau container ls` shows exactly `n` running containers. */
async function waitRunning(data: string, n: number): Promise<string[][]> {
  let rows: string[][] = [];
  for (let i = 0; i < 100; i++) {
    rows = await running(data);
    if (rows.length === n) return rows;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`expected ${n} running containers, found ${JSON.stringify(rows)}`);
}

Deno.test({
  name: SKIP ? `containers deployed through git (skipped: ${SKIP})` : "containers deployed through git",
  ignore: SKIP !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const work = await Deno.makeTempDir({ prefix: "tau-cdeploy-" });
    const data = join(work, "data");
    let cloud = await startCloud(data);
    const project = join(work, "shop");
    const config = join(project, "config");
    const cli = (args: string[]) => tau([...args, "--cloud", cloud.url], { cwd: project });
    const get = (path: string, init: Parameters<typeof hostRequest>[3] = {}) =>
      hostRequest(cloud.port, HOST, path, init);
    const push = async (message: string) => {
      const commit = await commitAndPush(config, message);
      return await waitForBuild(cloud.url, "shop", commit);
    };
    try {
      await t.step("image import, push containers/web.yaml, served through the gateway", async () => {
        await writeOciLayout(join(work, "oci"), { layers: [await busyboxLayer()] }, "busybox:latest");
        const imp = await tau(["image", "import", join(work, "oci"), "--data", join(data, "containers")]);
        assertEquals(imp.code, 0, imp.stderr);
        assertEquals((await tau(["new", "project", "shop", "--cloud", cloud.url], { cwd: work })).code, 0);
        assertEquals((await tau(["new", "domain", "shop", "--fqdn", HOST], { cwd: project })).code, 0);
        await Deno.mkdir(join(config, "containers"));
        await Deno.writeTextFile(join(config, "containers/web.yaml"), webYaml("v1"));
        const v = await tau(["validate"], { cwd: project });
        assertEquals(v.code, 0, v.stderr);

        const job = await push("web v1");
        assertEquals(job.status, "success", job.error);
        const home = await get("/");
        assertEquals([home.status, home.text], [200, "v1\n"]);
        assert(home.headers.get("x-request-id"));
        const echo = await get("/cgi-bin/echo?x=1", { method: "POST", body: "ping body" });
        assertEquals(echo.status, 200, cloud.output().slice(-2000));
        assertEquals(echo.text, `method=POST host=${HOST} uri=/cgi-bin/echo?x=1 greeting=v1\nping body`);
        assertEquals((await get("/nothing-here")).status, 404); // the container's own 404, passed through
        const logs = await cli(["logs", job.id]);
        assertMatch(logs.stdout, /container web: busybox:latest = [0-9a-f]{12}, 1 replica\(s\)/);
        assertMatch(logs.stdout, /container shop\/web: 1 replica\(s\) ready in \d+ ms/);
        assertEquals((await waitRunning(data, 1)).length, 1);
        // What the container prints streams to the node's terminal, prefixed with its name (httpd -v logs requests).
        for (let i = 0; i < 50 && !/\[container shop-web-[0-9a-f]+-1\] .*response:404/.test(cloud.output()); i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        assertMatch(cloud.output(), /\[container shop-web-[0-9a-f]+-1\] .*response:404/);
      });

      await t.step("a redeploy under load fails no request, then retires the old container", async () => {
        const [[oldId]] = await running(data);
        // Four clients in a loop, each on fresh connections; each must see only 200s, and never v1 after v2.
        const seen: string[][] = [[], [], [], []];
        const failures: string[] = [];
        let stop = false;
        const load = Promise.all(seen.map(async (mine) => {
          for (let i = 0; i < 5000 && !stop; i++) {
            const r = await get("/").catch((err) => ({ status: 0, text: String(err) }));
            if (r.status !== 200) failures.push(`${r.status} ${r.text}`);
            else mine.push(r.text.trim());
          }
        }));
        await Deno.writeTextFile(join(config, "containers/web.yaml"), webYaml("v2"));
        const job = await push("web v2");
        assertEquals(job.status, "success", job.error);
        const total = () => seen.reduce((n, s) => n + s.length, 0);
        const after = total();
        for (let i = 0; i < 200 && total() < after + 40; i++) await new Promise((r) => setTimeout(r, 25));
        stop = true;
        await load;
        assertEquals(failures, []);
        for (const mine of seen) {
          const firstV2 = mine.indexOf("v2");
          assert(firstV2 >= 0, "v2 was never served");
          assertEquals(mine.slice(firstV2).filter((s) => s !== "v2"), [], "v1 answered after v2 went live");
        }
        assert(seen.every((mine) => mine[0] === "v1"), "the load did not start before the redeploy");
        const rows = await waitRunning(data, 1);
        assert(rows[0][0] !== oldId, "the old container is still the one running");
      });

      await t.step("broken deploys fail with a clear log and v2 keeps serving", async () => {
        await Deno.writeTextFile(
          join(config, "containers/web.yaml"),
          webYaml("v3").replace("exec httpd -f -v -p 8080 -h /srv", "echo giving up >&2; exit 3"),
        );
        const crashed = await push("web crashes");
        assertEquals(crashed.status, "failed");
        assertMatch(crashed.error, /container shop\/web exited with code 3 before it was ready/);
        assertStringIncludes((await cli(["logs", crashed.id])).stdout, "giving up");
        assertEquals((await get("/")).text, "v2\n");

        // Runs, but never listens: the deploy gives up after readiness.timeout.
        await Deno.writeTextFile(
          join(config, "containers/web.yaml"),
          webYaml("v3", "readiness: {timeout: 1s}\n").replace(
            "exec httpd -f -v -p 8080 -h /srv",
            "echo still booting; exec sleep 600",
          ),
        );
        const silent = await push("web never listens");
        assertEquals(silent.status, "failed");
        assertMatch(silent.error, /container shop\/web did not answer HTTP on port 8080 within 1 s/);
        assertMatch(
          (await cli(["logs", silent.id])).stdout,
          /hint: .*raise readiness.timeout; its last output: still booting/,
        );
        assertEquals((await get("/")).text, "v2\n");

        await Deno.writeTextFile(
          join(config, "containers/web.yaml"),
          webYaml("v3").replace("busybox:latest", "nothere"),
        );
        const missing = await push("image missing");
        assertEquals(missing.status, "failed");
        assertMatch(missing.error, /image nothere not found/);
        assertEquals((await get("/")).text, "v2\n");
        assertEquals((await waitRunning(data, 1)).length, 1, "a failed deploy left a container behind");
      });

      await t.step("a config-only change keeps the running container", async () => {
        const [[before]] = await running(data);
        await Deno.writeTextFile(join(config, "containers/web.yaml"), webYaml("v2").replace("the shop's", "our"));
        const job = await push("describe it");
        assertEquals(job.status, "success", job.error);
        assertEquals((await get("/")).text, "v2\n");
        assertEquals((await running(data)).map((r) => r[0]), [before]);
      });

      await t.step("containers of one project reach each other through /run/tau/<name>.sock", async () => {
        // An image with a Unix-socket HTTP client (busybox has none), built from the fixture's C source.
        const client = join(work, "unixget");
        const cc = await new Deno.Command("cc", { args: ["-static", "-O2", "-o", client, UNIXGET_C] }).output();
        assert(cc.success, new TextDecoder().decode(cc.stderr));
        const tools = tar([{ name: "bin", type: "dir" }, {
          name: "bin/unixget",
          data: await Deno.readFile(client),
          mode: 0o755,
        }]);
        await writeOciLayout(join(work, "tools-oci"), { layers: [await busyboxLayer(), tools] }, "tools:1");
        const imp = await tau(["image", "import", join(work, "tools-oci"), "--data", join(data, "containers")]);
        assertEquals(imp.code, 0, imp.stderr);
        await Deno.writeTextFile(
          join(config, "containers/api.yaml"),
          `container: tools:1\nport: 9000\ncommand: ["sh", "-c", "mkdir /w && echo from api > /w/index.html && ` +
            `exec httpd -f -p 9000 -h /w"]\n`,
        );
        const job = await push("add api");
        assertEquals(job.status, "success", job.error);
        const rows = await waitRunning(data, 2);
        const api = rows.find((r) => r[1].startsWith("shop-api-"))![0];
        const exec = (path: string) =>
          tau(["container", "exec", api, "--data", join(data, "containers"), "--", "unixget", `/run/tau/${path}`, "/"]);
        const toWeb = await exec("web.sock");
        assertEquals(toWeb.code, 0, toWeb.stderr);
        assertMatch(toWeb.stdout, /^HTTP\/1\.[01] 200 /);
        assertMatch(toWeb.stdout, /\r\n\r\nv2\n$/);
        const toSelf = await exec("api.sock");
        assertMatch(toSelf.stdout, /\r\n\r\nfrom api\n$/);
        // The sockets are read-only from inside: a container cannot replace a sibling's address.
        const write = await tau([
          "container",
          "exec",
          api,
          "--data",
          join(data, "containers"),
          "--",
          "rm",
          "/run/tau/web.sock",
        ]);
        assert(write.code !== 0, "removing a sibling socket must fail");
      });

      await t.step(
        "a container deployed without limits gets the defaults and cannot touch kernel settings",
        async () => {
          // api.yaml has no `limits`: the documented defaults (runtime/schema/container_kind.ts), read from its cgroups.
          const api = (await records(data)).find((r) => r.status === "running" && r.name.startsWith("shop-api-"))!;
          const cgroupValue = async (...files: string[]) => {
            for (const d of api.cgroups) {
              for (const f of files) {
                const v = await Deno.readTextFile(join(d, f)).catch(() => null);
                if (v !== null) return v.trim();
              }
            }
            return null;
          };
          assertEquals(await cgroupValue("memory.limit_in_bytes", "memory.max"), String(512_000_000));
          assertEquals(await cgroupValue("pids.max"), "1024");
          const exec = (...cmd: string[]) =>
            tau(["container", "exec", api.id, "--data", join(data, "containers"), "--", ...cmd]);
          const write = await exec("sh", "-c", "echo 50 > /proc/sys/vm/overcommit_ratio");
          assert(write.code !== 0, "a deployed container must not write vm.overcommit_ratio");
          assertStringIncludes(write.stderr, "Read-only file system");
          const mknod = await exec("mknod", "/tmp/kmsg", "c", "1", "11");
          assertStringIncludes(mknod.stderr, "Operation not permitted");
          assertEquals((await exec("echo", "still serving")).stdout, "still serving\n");
        },
      );

      await t.step("rollback starts the old version's container before it flips", async () => {
        const r = await cli(["rollback", "shop", "--to", await firstConfigCommit(config)]);
        assertEquals(r.code, 0, r.stderr + cloud.output().slice(-3000));
        assertEquals((await get("/")).text, "v1\n");
        await waitRunning(data, 1);
      });

      await t.step("a replica that dies is replaced and served again", async () => {
        const [[before]] = await waitRunning(data, 1);
        const stop = await tau(["container", "stop", before, "--data", join(data, "containers")]);
        assertEquals(stop.code, 0, stop.stderr);
        let r = await get("/");
        for (let i = 0; i < 100 && r.status !== 200; i++) {
          await new Promise((ok) => setTimeout(ok, 100));
          r = await get("/");
        }
        assertEquals([r.status, r.text], [200, "v1\n"]);
        const [[after]] = await waitRunning(data, 1);
        assert(after !== before, "the stopped container is still listed as running");
        assertMatch(cloud.output(), /exited with code \d+; restarting it/);
      });

      await t.step("a clean stop stops the containers; a restart serves them again", async () => {
        await cloud.stop();
        assertEquals((await records(data)).filter((r) => r.status === "running"), []);
        await assertNoLeaks(join(data, "containers"), await records(data));
        cloud = await startCloud(data);
        assertEquals((await get("/")).text, "v1\n");
      });

      await t.step("after kill -9 of the node, the next start adopts the running container", async () => {
        const [[before]] = await waitRunning(data, 1);
        Deno.kill(cloud.pid, "SIGKILL");
        await cloud.stop();
        assertEquals((await running(data)).map((r) => r[0]), [before], "the container died with the node");
        cloud = await startCloud(data);
        assertEquals((await get("/")).text, "v1\n");
        assertEquals((await running(data)).map((r) => r[0]), [before]);
      });
    } finally {
      await cloud.stop();
      const left = await records(data);
      assertEquals(left.filter((r) => r.status === "running").map((r) => r.name), []);
      await assertNoLeaks(join(data, "containers"), left);
      // <data>/containers/run is a link to a tmpfs directory (runtime/container/run_root.ts): remove both.
      const runRoot = await Deno.realPath(join(data, "containers/run")).catch(() => null);
      if (runRoot) await Deno.remove(runRoot, { recursive: true });
      await Deno.remove(work, { recursive: true });
    }
  },
});

/** The config commit of the first deploy ("web v1"). */
async function firstConfigCommit(repo: string): Promise<string> {
  const out = await new Deno.Command("git", { args: ["log", "--format=%H %s"], cwd: repo, stdout: "piped" }).output();
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) => l.endsWith(" web v1"));
  return line!.split(" ")[0].slice(0, 12);
}
