// Functions compiled against Taubyte's ABI (imports from `taubyte/sdk`, an export taking the event id, `_initialize`),
// pushed with git and served by the gateway as they are: no edits, no wrapper. One reads its request and writes its
// answer; another opens a database and a storage declared in the config repo, reads what an earlier request wrote
// (also after the node restarts), calls out over HTTP only where its allow-list lets it, and gets a clear errno
// (logged with the request id) for every bad input, with nothing stored lost. On a cloud the same data lives on
// hoarder nodes (the last step of tests/multinode_test.ts). One cloud for both: the suite's time is counted.
import { join } from "node:path";
import { assert, assertEquals } from "./helpers/assert.ts";
import { commitAndPush, hostRequest, startCloud, tau, waitForBuild } from "./helpers/cloud.ts";
import { TAUBYTE_DATA_GUEST } from "./fixtures/taubyte_data_guest.ts";
import { TAUBYTE_GUEST } from "./fixtures/taubyte_guest.ts";

const HOST = "data.localtau";

Deno.test("taubyte/sdk functions run unmodified: the HTTP event, databases, storages, globals, outbound HTTP, a restart", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-taubyte-data-" });
  let hits = { allowed: 0, denied: 0 };
  const allowed = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    hits.allowed++;
    return new Response("pong");
  });
  const denied = Deno.serve({ hostname: "127.0.0.2", port: 0, onListen() {} }, () => {
    hits.denied++;
    return new Response("should not be reached");
  });
  let cloud = await startCloud(join(work, "data"));
  try {
    const made = await tau(["new", "project", "tbdata", "--cloud", cloud.url], { cwd: work });
    assertEquals(made.code, 0, made.stderr);
    const dir = join(work, "tbdata");
    for (
      const args of [
        ["new", "domain", "web", "--fqdn", HOST],
        ["new", "function", "data", "--paths", "/data", "--method", "ANY", "--template", "wasm"],
        ["new", "function", "ping", "--paths", "/hello/*", "--method", "POST", "--template", "wasm"],
        ["new", "database", "users", "--size", "2KB"],
        ["new", "storage", "files", "--versioning"],
      ]
    ) {
      const r = await tau(args, { cwd: dir });
      assertEquals(r.code, 0, r.stderr);
    }
    const fnYaml = join(dir, "config/functions/data.yaml");
    await Deno.writeTextFile(
      fnYaml,
      `${await Deno.readTextFile(fnYaml)}outbound:\n  allow: ["127.0.0.1:${allowed.addr.port}"]\n`,
    );
    await Deno.writeFile(join(dir, "code/functions/data/data.wasm"), TAUBYTE_DATA_GUEST);
    await Deno.writeFile(join(dir, "code/functions/ping/ping.wasm"), TAUBYTE_GUEST);
    await waitForBuild(cloud.url, "tbdata", await commitAndPush(join(dir, "code"), "data guest"));
    const job = await waitForBuild(cloud.url, "tbdata", await commitAndPush(join(dir, "config"), "data resources"));
    assertEquals(job.status, "success", job.error);

    // The HTTP event: 200 + event type (http = 1) * 10 + the errnos of three bad calls (3 + 1 + 2).
    const ping = await hostRequest(cloud.port, HOST, "/hello/world?name=ada", { method: "POST", body: "hi" });
    assertEquals(ping.status, 216, ping.text);
    assertEquals(ping.text, "init /hello/world ada hi");

    const call = (query: string, body?: string) =>
      hostRequest(cloud.port, HOST, `/data?${query}`, body === undefined ? {} : { method: "POST", body });
    const put = await call("op=p&db=users&key=ada", "lovelace");
    assertEquals(put.status, 200, put.text);
    assertEquals((await call("op=g&db=users&key=ada")).text, "lovelace", "read back by the next request");
    assertEquals((await call("op=S&db=files&key=notes.txt", "first")).text, "1");
    assertEquals((await call("op=S&db=files&key=notes.txt", "second")).text, "2", "versioned: a new version");
    assertEquals((await call("op=F&db=files&key=notes.txt")).text, "second");
    assertEquals((await call("op=w&db=greeting", "hello")).status, 200);
    assertEquals((await call("op=s")).text, "tbdata");

    // Bad inputs: each a clear errno, the request id in the log; what was stored stays.
    const big = await call("op=p&db=users&key=big", "x".repeat(3000));
    assertEquals(big.status, 424, `over storage.size: databasePutFailed (24): ${big.text}`);
    assertEquals((await call("op=g&db=users&key=big")).status, 429, "nothing was written");
    const unbound = await call("op=g&db=nobody&key=ada");
    assertEquals(unbound.status, 422, "a name no database resource matches: databaseCreateFailed (22)");
    const outOfMemory = await call("op=x&db=users&key=ada");
    assertEquals(outOfMemory.status, 403, "a pointer past the guest's memory: addressOutOfMemory (3)");
    assertEquals((await call("op=g&db=users&key=ada")).text, "lovelace");

    // Outbound HTTP: the allow-listed loopback server answers; another loopback address is refused before any
    // connection is made.
    const out = await call(`op=h&url=${encodeURIComponent(`http://127.0.0.1:${allowed.addr.port}/`)}`);
    assertEquals([out.status, out.text], [200, "pong"]);
    const refused = await call(`op=h&url=${encodeURIComponent(`http://127.0.0.2:${denied.addr.port}/`)}`);
    assertEquals(refused.status, 413, "httpRequestFailed (13)");
    assertEquals(hits, { allowed: 1, denied: 0 });
    // tau dev streams function logs to its terminal: the refusal is one line naming the address and the fix.
    assert(/\[fn data [^\]]+\] stderr: host: denied: 127\.0\.0\.2.*allow-list/.test(cloud.output()), cloud.output());

    // A restart keeps everything.
    await cloud.stop();
    cloud = await startCloud(join(work, "data"));
    assertEquals((await call("op=g&db=users&key=ada")).text, "lovelace");
    assertEquals((await call("op=F&db=files&key=notes.txt")).text, "second");
    assertEquals((await call("op=v&db=greeting")).text, "hello");
    assertEquals((await call("op=l&db=users&key=")).text, "ada\0");
  } finally {
    hits = { allowed: 0, denied: 0 };
    await cloud.stop();
    await allowed.shutdown();
    await denied.shutdown();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
