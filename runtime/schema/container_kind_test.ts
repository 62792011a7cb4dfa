// The `containers/<name>.yaml` kind: Statefile fields read by the Statefile's readers, plus routes and refusals.
import assert from "node:assert/strict";
import { parseProjectConfig, routesOf } from "./mod.ts";

const BASE: Record<string, string> = {
  "config.yaml": "name: hello\n",
  "domains/hello.yaml": "fqdn: hello.localtau\n",
  "websites/site.yaml": "domains: [hello]\npaths: [/]\n",
};

function parse(files: Record<string, string>) {
  return parseProjectConfig({ ...BASE, ...files });
}

Deno.test("container kind: Statefile fields parse like `tau container run`", () => {
  const { config, issues } = parse({
    "containers/web.yaml": `container: busybox:latest
port: 8080
command: ["httpd", "-f", "-p", "8080"]
env: {GREETING: hi}
limits: {memory: 64MB, cpus: 0.5, pids: 64}
replicas: 2
readiness: {path: /healthz, timeout: 5s}
domains: [hello]
paths: [/app]
`,
    "containers/worker.yaml": "container: busybox\ncommand: sleep 600\n",
    "containers/batch.yaml": "container: busybox\ncommand: sleep 600\nlimits: {cpus: 0.5, pids: 16}\n",
  });
  assert.deepEqual(issues, []);
  const web = config!.containers.find((c) => c.name === "web")!;
  assert.equal(web.image, "busybox:latest");
  assert.equal(web.port, 8080);
  assert.deepEqual(web.command, ["httpd", "-f", "-p", "8080"]);
  assert.deepEqual(web.env, { GREETING: "hi" });
  assert.deepEqual(web.limits, { memoryBytes: 64_000_000, cpus: 0.5, pids: 64 });
  assert.equal(web.replicas, 2);
  assert.deepEqual(web.readiness, { path: "/healthz", timeoutMs: 5000 });
  const worker = config!.containers.find((c) => c.name === "worker")!;
  assert.deepEqual(worker.command, ["sleep", "600"]);
  assert.equal(worker.replicas, 1);
  assert.deepEqual(worker.readiness, { path: "/", timeoutMs: 30_000 });
  // No `limits`: the documented defaults; a limit left out of `limits` gets its default too.
  assert.deepEqual(worker.limits, { memoryBytes: 512_000_000, pids: 1024 });
  const batch = config!.containers.find((c) => c.name === "batch")!;
  assert.deepEqual(batch.limits, { memoryBytes: 512_000_000, cpus: 0.5, pids: 16 });
  assert.deepEqual(
    routesOf(config!).filter((r) => r.kind === "container"),
    [{ fqdn: "hello.localtau", kind: "container", resource: "web", method: "*", path: "/app" }],
  );
});

Deno.test("container kind: every bad value is an issue on its line", () => {
  const { issues } = parse({
    "containers/web.yaml": `container: busybox
port: 70000
limits: {memory: 1KB}
replicas: 0
env: {"bad-name": 1}
mounts: [{source: /etc, target: /etc}]
ports: ["8080:80"]
domains: [nowhere]
paths: [app]
readiness: {path: healthz, timeout: forever}
`,
  });
  const text = issues.map((i) => `${i.line}: ${i.message}`).join("\n");
  for (
    const re of [
      /^2: port: "70000" is not a port/m,
      /^3: limits.memory: 1KB is too small/m,
      /^4: replicas: "0" is not a replica count/m,
      /^5: env.bad-name: is not a variable name/m,
      /^6: mounts: containers deployed from git cannot mount host paths/m,
      /^7: ports: a deployed container serves one HTTP port/m,
      /domain 'nowhere' does not exist/,
      /paths\[0\] 'app' must start with "\/"/,
      /readiness.path .*'healthz' must start with "\/"/,
      /readiness.timeout .*forever/,
    ]
  ) assert.match(text, re);
});

Deno.test("container kind: a missing image and a route clash are reported", () => {
  const { issues } = parse({ "containers/web.yaml": "port: 80\ndomains: [hello]\n" });
  const text = issues.map((i) => `${i.file}:${i.line}: ${i.message}`).join("\n");
  assert.match(text, /containers\/web.yaml:\w*: container is required, e.g. busybox:latest/);
  assert.match(text, /route ANY hello.localtau\/ is already served by website 'site'/);
});
