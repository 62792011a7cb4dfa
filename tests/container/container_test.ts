/** End to end (root): run, serve HTTP through the published port, exec, stop, rm, errors, kill -9 recovery. */
import { assert, assertEquals, assertMatch, assertRejects } from "../helpers/assert.ts";
import { assertNoLeaks, e2e, finalCleanup, httpGet } from "./harness.ts";
import { ContainerRuntime } from "../../runtime/container/runtime.ts";
import { parseStatefile } from "../../runtime/container/statefile.ts";
import { processStart } from "../../runtime/container/records.ts";

const HTTPD = `container: busybox:latest
port: 8080
command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
env: {GREETING: hi}
limits: {memory: 64MB, cpus: 0.5, pids: 64}
`;

Deno.test(e2e("container: run serves HTTP through the published port; exec, stop, rm", async ({ rt }) => {
  const [c] = await rt.run(parseStatefile(HTTPD));
  assert(c.ports[0].host > 0, "a host port was picked");
  const res = await httpGet(c.ports[0].host, "/index.html");
  assertEquals(res.status, 200);
  assertEquals(res.body, "hello from busybox\n");
  // The Unix socket side of the port bridge answers too (this is what the gateway will use).
  const conn = await Deno.connect({ transport: "unix", path: c.ports[0].socket });
  await conn.write(new TextEncoder().encode("GET /index.html HTTP/1.0\r\n\r\n"));
  const reply = await new Response(conn.readable).text();
  assertMatch(reply, /^HTTP\/1\.[01] 200/);

  const ex = await rt.execInContainer(c.id, [
    "sh",
    "-c",
    "echo $GREETING; hostname; cat /proc/1/cmdline >/dev/null; ls /dev",
  ], true);
  assertEquals(ex.code, 0);
  const [greeting, hostname] = ex.stdout.split("\n");
  assertEquals(greeting, "hi");
  assertEquals(hostname, c.name);
  for (const dev of ["null", "zero", "random", "urandom", "tty"]) assert(ex.stdout.includes(dev), `/dev/${dev}`);
  // Only loopback: no route anywhere else.
  const net = await rt.execInContainer(c.id, ["cat", "/proc/net/route"], true);
  assertEquals(net.stdout.trim().split("\n").length, 1, "routing table must be empty");
  // /sys is read-only.
  const sys = await rt.execInContainer(c.id, ["sh", "-c", "echo x > /sys/kernel/x"], true);
  assert(sys.code !== 0, "/sys must be read-only");

  const stopped = await rt.stopContainer(c.id, 5000);
  assertEquals(stopped.status, "exited");
  assertEquals(stopped.exitCode, 143, "httpd ended by the forwarded SIGTERM");
  await rt.removeContainer(c.id);
  await assertNoLeaks(rt.dataDir, [stopped]);
}));

Deno.test(e2e("container: exit code and logs of a command that ends", async ({ rt }) => {
  const spec = parseStatefile(`container: busybox\ncommand: ["sh", "-c", "echo out; echo err >&2; exit 7"]\n`);
  const [c] = await rt.run(spec);
  const rec = await rt.waitContainer(c.id, 10_000);
  assertEquals([rec.status, rec.exitCode], ["exited", 7]);
  assertEquals(await rt.lastLogLines(c.id), ["out", "err"]);
}));

Deno.test(e2e("container: clear errors for bad Statefiles and missing things", async ({ rt, tmp }) => {
  await assertRejects(() => rt.run(parseStatefile("container: nothere\n")), /image nothere not found/);
  await assertRejects(
    () => rt.run(parseStatefile(`container: busybox\nmounts: [{source: ${tmp}/missing, target: /x}]\n`)),
    /mount source .*missing does not exist/,
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    await assertRejects(
      () => rt.run(parseStatefile(`container: busybox\nports: ["${port}:80"]\ncommand: ["true"]\n`)),
      new RegExp(`port ${port} is already in use`),
    );
  } finally {
    listener.close();
  }
  await assertRejects(
    () => rt.run(parseStatefile(`container: busybox\ncommand: [no-such-cmd]\n`)),
    /no-such-cmd: command not found/,
  );
  assertEquals((await rt.listContainers()).length, 0, "failed starts leave nothing");
}));

Deno.test(e2e("container: kill -9 of the supervisor is cleaned up on next start", async ({ rt }) => {
  const [c] = await rt.run(parseStatefile(HTTPD));
  const before = await rt.getContainer(c.id);
  Deno.kill(before.supervisorPid!, "SIGKILL");
  // The container dies with its supervisor (parent-death signal); wait for that, bounded.
  for (let i = 0; i < 200 && (await processStart(before.initPid!)) !== null; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const reopened = await ContainerRuntime.open(rt.dataDir);
  const after = await reopened.getContainer(c.id);
  assertEquals(after.status, "failed");
  for (const dir of after.cgroups) assertEquals(await Deno.stat(dir).then(() => 1, () => 0), 0, `${dir} removed`);
  assertEquals(await Deno.stat(c.ports[0].socket).then(() => 1, () => 0), 0, "socket removed");
  await reopened.removeContainer(c.id);
  await assertNoLeaks(rt.dataDir, [after]);
}));

Deno.test(finalCleanup());
