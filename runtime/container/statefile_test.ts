import { parseSize, parseStatefile } from "./statefile.ts";
import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";

const reject = (text: string, re: RegExp) =>
  assertRejects(() => Promise.resolve().then(() => parseStatefile(text, "app.yml", "/base")), re);

Deno.test("statefile: the issue's example parses", () => {
  const spec = parseStatefile(
    `container: "busybox:latest"
port: 8080
command: ["httpd", "-f", "-p", "8080"]
env: {GREETING: hi}
mounts:
  - {source: /tmp/local-config, target: /config, readonly: true}
  - {source: data, target: /data}
limits: {memory: 64MB, cpus: 0.5, pids: 64}
replicas: 2
`,
    "app.yml",
    "/base",
  );
  assertEquals(spec.image, "busybox:latest");
  assertEquals(spec.ports, [{ container: 8080, host: 0 }]);
  assertEquals(spec.command, ["httpd", "-f", "-p", "8080"]);
  assertEquals(spec.env, { GREETING: "hi" });
  assertEquals(spec.mounts, [
    { source: "/tmp/local-config", target: "/config", readonly: true },
    { source: "/base/data", target: "/data", readonly: false },
  ]);
  assertEquals(spec.limits, { memoryBytes: 64_000_000, cpus: 0.5, pids: 64 });
  assertEquals(spec.replicas, 2);
});

Deno.test("statefile: ports in every form", () => {
  const spec = parseStatefile(`container: x\nports: [80, "18080:8080", {container: 53, host: 5353}]\n`);
  assertEquals(spec.ports, [{ container: 80, host: 0 }, { container: 8080, host: 18080 }, {
    container: 53,
    host: 5353,
  }]);
});

Deno.test("statefile: sizes", () => {
  // One size syntax in tau: decimal units, binary with the i (as Kubernetes: 64M = 64,000,000, 64Mi = 64 MiB).
  assertEquals(parseSize("64MB", "x"), 64_000_000);
  assertEquals(parseSize("64MiB", "x"), 67108864);
  assertEquals(parseSize("1g", "x"), 1_000_000_000);
  assertEquals(parseSize(8388608, "x"), 8388608);
});

Deno.test("statefile: clear errors", async () => {
  await reject("port: 80\n", /`container` \(the image\) is missing/);
  await reject("container: x\nlimits: {memory: 64XB}\n", /limits.memory: "64XB" is not a size/);
  await reject("container: x\nlimits: {memory: 1KB}\n", /too small/);
  await reject("container: x\nlimits: {cpu: 1}\n", /limits.cpu: unknown limit/);
  await reject("container: x\nlimits: {pids: -1}\n", /not a process count/);
  await reject("container: x\nport: 70000\n", /not a port/);
  await reject("container: x\nmounts: [{target: /x}]\n", /`source` is missing/);
  await reject("container: x\nmounts: [{source: /a, target: rel}]\n", /absolute path/);
  await reject("container: x\nimagee: y\n", /imagee: unknown field/);
  await reject('container: x\nreplicas: 2\nports: ["80:80"]\n', /cannot be shared/);
  await reject("container: [\n", /invalid YAML/);
});
