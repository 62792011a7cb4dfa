// `tau logs --follow <project> [--function NAME]`: every function's request lines and output, from every node,
// prefixed with node and function, streamed until the follower stops. One node (tau dev), then two nodes of a cloud:
// a follower on one node sees what a function served by the other one logged. Bad input: an unknown project.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import {
  commitAndPush,
  hostRequest,
  MAIN,
  NODE_MODULES_MANUAL,
  startCloud,
  tau,
  waitForBuild,
} from "./helpers/cloud.ts";
import { eventually, startTestCloud } from "./helpers/cluster.ts";

const HOST = "logs.localtau";
const LOUD = `import { Request, Response, log } from "tau-sdk";
export function loud(): void {
  const req = new Request();
  log("loud saw " + req.path);
  new Response().status(201).send("logged");
}
`;

/** `tau logs ...` running, its output collected as it comes. */
function follow(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", NODE_MODULES_MANUAL, MAIN, "logs", ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>, into: (t: string) => void) => {
    for await (const c of s) into(dec.decode(c));
  };
  const done = Promise.all([pump(child.stdout, (t) => out += t), pump(child.stderr, (t) => err += t)]);
  return {
    out: () => out,
    err: () => err,
    /** Until stderr says it follows (the subscription is in place before the first request). */
    ready: () =>
      eventually(() => Promise.resolve(err.includes("following") ? true : undefined), `tau logs started: ${err}`),
    async stop() {
      try {
        child.kill("SIGINT");
      } catch { /* exited */ }
      await child.status;
      await done;
    },
  };
}

async function loudProject(cloudUrl: string, work: string): Promise<void> {
  assertEquals((await tau(["new", "project", "chatty", "--cloud", cloudUrl], { cwd: work })).code, 0);
  const dir = join(work, "chatty");
  for (
    const args of [
      ["new", "domain", "web", "--fqdn", HOST],
      ["new", "function", "loud", "--paths", "/loud", "--domains", "web"],
      ["new", "function", "quiet", "--paths", "/quiet", "--domains", "web"],
    ]
  ) {
    const r = await tau(args, { cwd: dir });
    assertEquals(r.code, 0, r.stderr);
  }
  await Deno.writeTextFile(join(dir, "code/functions/loud/index.ts"), LOUD);
  await waitForBuild(cloudUrl, "chatty", await commitAndPush(join(dir, "code"), "code"));
  const job = await waitForBuild(cloudUrl, "chatty", await commitAndPush(join(dir, "config"), "config"));
  assertEquals(job.status, "success", job.error);
}

Deno.test("tau logs --follow: request lines and output of every function, one function with --function", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-fnlogs-" });
  const cloud = await startCloud(join(work, "data"));
  let all: ReturnType<typeof follow> | undefined;
  let one: ReturnType<typeof follow> | undefined;
  try {
    await loudProject(cloud.url, work);
    all = follow(["--follow", "chatty", "--cloud", cloud.url]);
    await all.ready();
    one = follow(["--follow", "chatty", "--function", "quiet", "--cloud", cloud.url]);
    await one.ready();
    assertEquals((await hostRequest(cloud.port, HOST, "/loud")).status, 201);
    assertEquals((await hostRequest(cloud.port, HOST, "/quiet")).status, 200);
    await eventually(() => Promise.resolve(all!.out().includes("/quiet") || undefined), `both lines: ${all!.out()}`);
    assert(/^\[local loud\] log: loud saw \/loud \(\S+\)$/m.test(all!.out()), all!.out());
    assert(/^\[local loud\] request: GET \/loud 201 [\d.]+ms \(\S+\)$/m.test(all!.out()), all!.out());
    assert(/^\[local quiet\] request: GET \/quiet 200 /m.test(all!.out()), all!.out());
    await eventually(() => Promise.resolve(one!.out().includes("/quiet") || undefined), `quiet's line: ${one!.out()}`);
    assert(!one.out().includes(" loud]"), `--function quiet shows only quiet: ${one.out()}`);

    // An unknown project: one clear line, non-zero exit, nothing left running.
    const unknown = await tau(["logs", "--follow", "nosuch", "--function", "x", "--cloud", cloud.url]);
    assertEquals(unknown.code, 1);
    assertStringIncludes(unknown.stderr, "project nosuch does not exist");
  } finally {
    await all?.stop();
    await one?.stop();
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});

Deno.test({
  name: "tau logs --follow on a cloud: a follower on one node sees the lines of a function served by another",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const cluster = await startTestCloud([
      { shape: "a", ip: "127.0.0.131" },
      { shape: "b", ip: "127.0.0.132" },
    ], { cloud: "logs.test" });
    const [n1, n2] = cluster.nodes;
    const work = await Deno.makeTempDir({ prefix: "tau-fnlogs-multi-" });
    let watcher: ReturnType<typeof follow> | undefined;
    try {
      await cluster.waitMesh();
      await loudProject(n1.url, work);
      watcher = follow(["--follow", "chatty", "--cloud", n1.url]);
      await watcher.ready();
      // Served by node b (its own gateway runs the function); the follower is on node a.
      await eventually(async () => {
        const res = await hostRequest(n2.ports.http, HOST, "/loud", {}, n2.spec.ip);
        return res.status === 201 && watcher!.out().includes("[127.0.0.132/b loud] log: loud saw /loud")
          ? true
          : undefined;
      }, `a's follower sees b's lines: ${watcher!.out()}`);
      assertStringIncludes(watcher!.out(), "[127.0.0.132/b loud] request: GET /loud 201");
    } finally {
      await watcher?.stop();
      await cluster.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
