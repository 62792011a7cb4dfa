/**
 * A deployed container runs on the node that deployed it; every gateway of the cloud reaches it. Three `tau serve`
 * processes on 127.0.0.71-.73: n1 builds (the only monkey), n2 is a substrate that does not run the container, n3 a
 * gateway-only edge. Requests through n2 take one hop to n1, through n3 up to two; bodies stream both ways and the
 * request id is the same everywhere. Once a push removes the container, no gateway routes to it.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { commitAndPush, hostRequest, tau, waitForBuild } from "./helpers/cloud.ts";
import { eventually, startTestCloud, type TestNode } from "./helpers/cluster.ts";
import { busyboxLayer, writeOciLayout } from "./container/fixture.ts";
import { skipReason } from "./container/harness.ts";

const SKIP = await skipReason();
const HOST = "web.ctr.test";

const WEB_YAML = `container: busybox:latest
port: 8080
env:
  ECHO_CGI: |
    #!/bin/sh
    echo "Content-Type: text/plain"
    echo ""
    echo "method=$REQUEST_METHOD uri=$REQUEST_URI"
    head -c "$CONTENT_LENGTH"
command:
  - sh
  - -c
  - >-
    mkdir -p /srv/cgi-bin && echo "hello from n1" > /srv/index.html &&
    echo "$ECHO_CGI" > /srv/cgi-bin/echo && chmod +x /srv/cgi-bin/echo &&
    exec httpd -f -p 8080 -h /srv
limits: {memory: 32MB, pids: 32}
domains: [web]
paths: [/]
`;

const get = (node: TestNode, path: string, init: Parameters<typeof hostRequest>[3] = {}) =>
  hostRequest(node.ports.http, HOST, path, init, node.spec.ip);

Deno.test({
  name: SKIP
    ? `a container on one node is served by every gateway (skipped: ${SKIP})`
    : "a container on one node is served by every gateway",
  ignore: SKIP !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const cloud = await startTestCloud([
      { shape: "builder", ip: "127.0.0.71" },
      { shape: "substrate", ip: "127.0.0.72", services: "auth,tns,hoarder,substrate,gateway" },
      { shape: "edge", ip: "127.0.0.73", services: "gateway" },
    ], { cloud: "ctr.test" });
    const [n1, n2, n3] = cloud.nodes;
    const work = await Deno.makeTempDir({ prefix: "tau-multictr-" });
    const project = join(work, "ctr");
    try {
      await cloud.waitMesh();
      await t.step("deployed on n1 through git; n1, n2 and n3 all answer from it", async () => {
        await writeOciLayout(join(work, "oci"), { layers: [await busyboxLayer()] }, "busybox:latest");
        const imp = await tau([
          "image",
          "import",
          join(work, "oci"),
          "--data",
          join(n1.root, "storage/builder/containers"),
        ]);
        assertEquals(imp.code, 0, imp.stderr);
        assertEquals((await tau(["new", "project", "ctr", "--cloud", n1.url], { cwd: work })).code, 0);
        assertEquals((await tau(["new", "domain", "web", "--fqdn", HOST], { cwd: project })).code, 0);
        await Deno.mkdir(join(project, "config/containers"));
        await Deno.writeTextFile(join(project, "config/containers/web.yaml"), WEB_YAML);
        const commit = await commitAndPush(join(project, "config"), "web");
        const job = await waitForBuild(n1.url, "ctr", commit);
        assertEquals(job.status, "success", job.error);
        for (const node of cloud.nodes) {
          const r = await eventually(
            async () => {
              const r = await get(node, "/");
              return r.status === 200 ? r : undefined;
            },
            `the container through ${node.spec.shape}`,
            20_000,
          );
          assertEquals(r.text, "hello from n1\n", `through ${node.spec.shape}`);
          assert(r.headers.get("x-request-id"), "every answer names its request");
        }
        // n2 and n3 really forwarded: the container runs on n1 only.
        for (const [node, shape, n] of [[n1, "builder", 1], [n2, "substrate", 0], [n3, "edge", 0]] as const) {
          const ls = await tau(["container", "ls", "--data", join(node.root, "storage", shape, "containers")]);
          assertEquals(ls.stdout.split("\n").filter((l) => / running /.test(l)).length, n, `${shape}: ${ls.stdout}`);
        }
      });

      await t.step(
        "a request body streams through two hops and back; the container's own 404 passes through",
        async () => {
          const body = "x".repeat(200_000); // larger than one forwarded frame
          for (const node of [n2, n3]) {
            const r = await get(node, "/cgi-bin/echo?n=1", { method: "POST", body });
            assertEquals(r.status, 200, r.text.slice(0, 300));
            assertEquals(r.text, `method=POST uri=/cgi-bin/echo?n=1\n${body}`);
          }
          const missing = await get(n3, "/no-such-file");
          assertEquals(missing.status, 404); // the container's own 404, passed back through both hops
          assert(missing.headers.get("x-request-id"));
        },
      );

      await t.step("the container removed by a push: no gateway still routes to it (404 everywhere)", async () => {
        await Deno.remove(join(project, "config/containers/web.yaml"));
        const commit = await commitAndPush(join(project, "config"), "no container");
        const job = await waitForBuild(n1.url, "ctr", commit);
        assertEquals(job.status, "success", job.error);
        for (const node of cloud.nodes) {
          const r = await eventually(
            async () => {
              const r = await get(node, "/");
              return r.status !== 200 ? r : undefined;
            },
            `the old container no longer served through ${node.spec.shape}`,
            20_000,
          );
          assertEquals(r.status, 404, `${node.spec.shape}: ${r.status} ${r.text}`);
        }
      });
    } catch (err) {
      console.error(cloud.logs().slice(-6000));
      throw err;
    } finally {
      await cloud.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
