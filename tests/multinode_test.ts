/**
 * A cloud of separate `tau serve` processes on 127.0.0.31-.34 and .39: one push, served through every gateway; a node killed
 * under load; a node with the wrong swarm key; a node that joins after everything was deployed; data a function wrote
 * through a node that is then killed.
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { commitAndPush, hostRequest, sh, tau, waitForBuild } from "./helpers/cloud.ts";
import { eventually, nodesSeenBy, startTestCloud, type TestNode } from "./helpers/cluster.ts";
import { TAUBYTE_DATA_GUEST } from "./fixtures/taubyte_data_guest.ts";

const HOST = "api.multi.test";

function get(node: TestNode, path: string) {
  return hostRequest(node.ports.http, HOST, path, {}, node.spec.ip);
}

Deno.test({
  name:
    "many nodes, one cloud: push once, served everywhere, survives a kill -9, refuses a stranger, welcomes a late node, keeps data",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const cluster = await startTestCloud([
      { shape: "all", ip: "127.0.0.31" },
      { shape: "all", ip: "127.0.0.32" },
      { shape: "edge", ip: "127.0.0.33", services: "gateway,seer,hoarder" },
    ], { cloud: "example.test" });
    const [n1, n2, n3] = cluster.nodes;
    const work = await Deno.makeTempDir({ prefix: "tau-multi-" });
    try {
      await t.step("every node sees every other in tau nodes", async () => {
        await cluster.waitMesh();
        const r = await tau(["nodes", "--cloud", n3.url]);
        assertEquals(r.code, 0, r.stderr);
        const lines = r.stdout.trim().split("\n");
        assertEquals(lines.length, 3, r.stdout);
        for (const n of cluster.nodes) assert(lines.some((l) => l.startsWith(n.peerId) && l.includes("up")), r.stdout);
        assert(lines.some((l) => l.includes("edge") && l.includes("hoarder,seer,gateway")), r.stdout);
      });

      let commit = "";
      await t.step("one push to one node builds once and every gateway serves it", async () => {
        const r = await tau(["new", "project", "multi", "--cloud", n1.url], { cwd: work });
        assertEquals(r.code, 0, r.stderr);
        const project = join(work, "multi");
        for (
          const args of [
            ["new", "domain", "multi", "--fqdn", HOST],
            ["new", "function", "ping", "--domains", "multi", "--paths", "/ping"],
            ["new", "website", "site", "--domains", "multi", "--paths", "/"],
          ]
        ) {
          const s = await tau(args, { cwd: project });
          assertEquals(s.code, 0, s.stderr);
        }
        await commitAndPush(join(project, "code"), "code");
        commit = await commitAndPush(join(project, "config"), "config");
        const job = await waitForBuild(n1.url, "multi", commit);
        assertEquals(job.status, "success", JSON.stringify(job));
        for (const node of cluster.nodes) {
          const fn = await eventually(async () => {
            const res = await get(node, "/ping");
            return res.status === 200 ? res : undefined;
          }, `function on ${node.spec.ip}`);
          assertStringIncludes(fn.text, "ping");
          const site = await get(node, "/");
          assertEquals(site.status, 200, `website on ${node.spec.ip}`);
        }
        const d1 = await (await fetch(`${n1.url}/api/projects/multi/deployments`)).json();
        const d2 = await eventually(async () => {
          const d = await (await fetch(`${n2.url}/api/projects/multi/deployments`).catch(() => null))?.json();
          return d?.current === d1.current ? d : undefined;
        }, "the deployment replicated to node 2");
        assertEquals(d2.history.length, d1.history.length);
      });

      await t.step(
        "kill -9 a node under load: the others keep answering; it leaves tau nodes; back, it catches up",
        async () => {
          let ok = 0, failed = 0, running = true;
          const load = (async () => {
            while (running) {
              for (const node of [n2, n3]) {
                const res = await get(node, "/ping").catch(() => null);
                if (res?.status === 200) ok++;
                else failed++;
              }
            }
          })();
          await new Promise((r) => setTimeout(r, 300));
          await n1.kill();
          await new Promise((r) => setTimeout(r, 2000));
          running = false;
          await load;
          console.log(`requests to the surviving gateways while node 1 died: ${ok} ok, ${failed} failed`);
          assertEquals(failed, 0, "the surviving gateways answered every request");
          assert(ok > 10, `some load ran (${ok})`);
          await eventually(
            async () => {
              const seen = await nodesSeenBy(n2);
              return seen.find((e) => e.peer === n1.peerId)?.alive === false;
            },
            "node 1 reported down by node 2",
            15_000,
          );
          await n1.start();
          await cluster.waitMesh();
          const d1 = await (await fetch(`${n1.url}/api/projects/multi/deployments`)).json();
          const d2 = await (await fetch(`${n2.url}/api/projects/multi/deployments`)).json();
          assertEquals(d1.current, d2.current);
          assertEquals((await get(n1, "/ping")).status, 200);
        },
      );

      await t.step(
        "a push while a node is down builds once, is seen everywhere, and reaches that node when it returns",
        async () => {
          const project = join(work, "multi");
          await n2.kill();
          const file = join(project, "code", "functions", "ping", "index.ts");
          await Deno.writeTextFile(
            file,
            (await Deno.readTextFile(file)).replace("hello from ping", "hello v2 from ping"),
          );
          const c2 = await commitAndPush(join(project, "code"), "v2");
          const job = await waitForBuild(n1.url, "multi", c2);
          assertEquals(job.status, "success", JSON.stringify(job));
          await eventually(async () => (await get(n3, "/ping")).text.includes("v2"), "v2 through the edge gateway");
          // Every node lists the build, and its log (stored by CID) reads the same from a node that did not build it.
          const builds = await tau(["builds", "multi", "--cloud", n3.url]);
          assertEquals(builds.code, 0, builds.stderr);
          assertEquals(builds.stdout.split("\n").filter((l) => l.includes(c2.slice(0, 8))).length, 1, builds.stdout);
          const logs = await tau(["logs", String(job.id), "--cloud", n3.url]);
          assertStringIncludes(logs.stdout, "live: deployment");
          await n2.start();
          await cluster.waitMesh();
          const heads = await eventually(async () => {
            const r = await new Deno.Command("git", {
              args: ["ls-remote", `${n2.url}/git/multi/code.git`, "refs/heads/main"],
              stdout: "piped",
              stderr: "null",
            }).output();
            const line = new TextDecoder().decode(r.stdout);
            return line.startsWith(c2) ? line : undefined;
          }, "the pushed commit on node 2's git after it came back");
          assertStringIncludes(heads, c2);
          // A push to the returned node builds once too (on whichever node builds the project).
          await sh("git", ["remote", "set-url", "origin", `${n2.url}/git/multi/code.git`], join(project, "code"));
          await Deno.writeTextFile(
            file,
            (await Deno.readTextFile(file)).replace("hello v2 from ping", "hello v3 from ping"),
          );
          const c3 = await commitAndPush(join(project, "code"), "v3");
          assertEquals((await waitForBuild(n2.url, "multi", c3)).status, "success");
          for (const node of [n1, n2, n3]) {
            await eventually(async () => (await get(node, "/ping")).text.includes("v3"), `v3 on ${node.spec.ip}`);
          }
          const all = await (await fetch(`${n1.url}/api/builds?project=multi`)).json() as { commit: string }[];
          assertEquals(all.filter((j) => j.commit === c3).length, 1, "one job for one push");
        },
      );

      await t.step("a node with another swarm key is refused and learns nothing", async () => {
        const root = join(cluster.dir, "stranger");
        const r = await tau([
          "config",
          "generate",
          "--root",
          root,
          "--cloud",
          "example.test",
          "--shape",
          "all",
          "--ip",
          "127.0.0.39",
          "--http",
          "21090",
          "--p2p",
          "21091",
          "--dns",
          "21092",
          "--new-swarm-key",
          "--bootstrap",
          n1.multiaddr,
        ]);
        assertEquals(r.code, 0, r.stderr);
        const stranger = await startStranger(root);
        try {
          await new Promise((res) => setTimeout(res, 4000));
          const seenByStranger = await (await fetch("http://127.0.0.39:21090/api/nodes")).json() as { peer: string }[];
          assertEquals(seenByStranger.length, 1, "the stranger knows only itself");
          for (const node of cluster.nodes) {
            const seen = await nodesSeenBy(node);
            assert(!seen.some((e) => e.peer === stranger.peerId), `${node.spec.ip} does not list the stranger`);
          }
          const res = await hostRequest(21090, HOST, "/ping", {}, "127.0.0.39");
          assertEquals(res.status, 404, "the stranger cannot serve the cloud's projects");
        } finally {
          await stranger.stop();
        }
      });

      await t.step("a node that joins after everything was deployed gets everything", async () => {
        const late = await cluster.add({ shape: "late", ip: "127.0.0.34" });
        await cluster.waitMesh();
        const d = await eventually(async () => {
          const res = await fetch(`${late.url}/api/projects/multi/deployments`).catch(() => null);
          const body = await res?.json().catch(() => null);
          return body?.current ? body : undefined;
        }, "the late node's replica has the deployment");
        const d2 = await (await fetch(`${n2.url}/api/projects/multi/deployments`)).json();
        assertEquals(d.current, d2.current);
        // The late node fetches the content from peers on first use (bitswap); under CI load the first fetch has
        // been seen to outlast its 15 s bound once (a 503 naming the CID): what matters is that it gets there.
        for (const path of ["/ping", "/"]) {
          let last = { status: 0, text: "" };
          await eventually(
            async () => (last = await get(late, path)).status === 200,
            `${path} on the late node`,
            45_000,
          )
            .catch(() => {
              throw new Error(`${path} on the late node: ${last.status} ${last.text}\n${late.logs().slice(-4000)}`);
            });
        }
      });

      await t.step("data a function wrote through one node is read on another after the writer is killed", async () => {
        const project = join(work, "multi");
        for (
          const args of [
            ["new", "function", "data", "--paths", "/data", "--method", "ANY", "--template", "wasm"],
            ["new", "database", "users", "--size", "1MB"],
          ]
        ) {
          const r = await tau(args, { cwd: project });
          assertEquals(r.code, 0, r.stderr);
        }
        await Deno.writeFile(join(project, "code/functions/data/data.wasm"), TAUBYTE_DATA_GUEST);
        await waitForBuild(n1.url, "multi", await commitAndPush(join(project, "code"), "data guest"));
        const job = await waitForBuild(n1.url, "multi", await commitAndPush(join(project, "config"), "database"));
        assertEquals(job.status, "success", JSON.stringify(job));
        const put = await eventually(async () => {
          const res = await hostRequest(n1.ports.http, HOST, "/data?op=p&db=users&key=ada", {
            method: "POST",
            body: "lovelace",
          }, n1.spec.ip);
          return res.status === 200 ? res : undefined;
        }, "a write through node 1");
        assertEquals(put.text, "");
        await n1.kill();
        for (const node of [n2, n3]) {
          const got = await eventually(async () => {
            const res = await get(node, "/data?op=g&db=users&key=ada");
            return res.status === 200 ? res : undefined;
          }, `the value read through ${node.spec.ip}`);
          assertEquals(got.text, "lovelace");
        }
      });
    } finally {
      await cluster.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});

async function startStranger(root: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, "serve", "--root", root, "--shape", "all"],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let out = "";
  const dec = new TextDecoder();
  await new Promise<void>((resolve, reject) => {
    const collect = async (s: ReadableStream<Uint8Array>) => {
      for await (const c of s) {
        out += dec.decode(c);
        if (out.includes(" ready: gateway")) resolve();
      }
    };
    collect(child.stdout).catch(() => {});
    collect(child.stderr).catch(() => {});
    child.status.then((s) => reject(new Error(`stranger exited ${s.code}: ${out}`)));
  });
  const peerId = out.match(/p2p \/ip4\/[^ ]+\/p2p\/(\S+)/)?.[1] ?? "";
  return {
    peerId,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}
