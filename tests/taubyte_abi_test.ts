// A function compiled against Taubyte's ABI (imports from `taubyte/sdk`, export taking the event id, `_initialize`),
// pushed with git and served by the gateway as it is: no edits, no wrapper.
import { join } from "node:path";
import { assertEquals } from "./helpers/assert.ts";
import { commitAndPush, hostRequest, startCloud, tau, waitForBuild } from "./helpers/cloud.ts";
import { TAUBYTE_GUEST } from "./fixtures/taubyte_guest.ts";

Deno.test("a taubyte/sdk function runs unmodified behind the gateway", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-taubyte-abi-" });
  const cloud = await startCloud(join(work, "data"));
  try {
    const made = await tau(["new", "project", "tb", "--cloud", cloud.url], { cwd: work });
    assertEquals(made.code, 0, made.stderr);
    const dir = join(work, "tb");
    for (
      const args of [
        ["new", "domain", "web", "--fqdn", "tb.localtau"],
        ["new", "function", "ping", "--paths", "/hello/*", "--method", "POST", "--template", "wasm"],
      ]
    ) {
      const r = await tau(args, { cwd: dir });
      assertEquals(r.code, 0, r.stderr);
    }
    await Deno.writeFile(join(dir, "code/functions/ping/ping.wasm"), TAUBYTE_GUEST);
    await waitForBuild(cloud.url, "tb", await commitAndPush(join(dir, "code"), "taubyte guest"));
    const job = await waitForBuild(cloud.url, "tb", await commitAndPush(join(dir, "config"), "route"));
    assertEquals(job.status, "success", job.error);
    const res = await hostRequest(cloud.port, "tb.localtau", "/hello/world?name=ada", { method: "POST", body: "hi" });
    assertEquals(res.status, 216, res.text);
    assertEquals(res.text, "init /hello/world ada hi");
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});
