/**
 * Containers served by the gateway (root), deployed through git and measured under wrk through the gateway against
 * the same container reached directly on its published 127.0.0.1 port (the helper's forwarder), in the same run:
 * busybox httpd (a new connection per request) and a keep-alive hello server (bench/fixtures/hello_server.c), which
 * shows the proxy's own cost. Also: push -> first 200 of a container deploy, and a redeploy under wrk load.
 */
import { join } from "node:path";
import { busyboxLayer, haveBusybox, tar, writeOciLayout } from "../tests/container/fixture.ts";
import { commitAndPush, hostRequest, startCloud, tau, waitForBuild } from "../tests/helpers/cloud.ts";
import { containerSupportProblem } from "../runtime/container/runtime.ts";
import { CONNECTIONS, has, SECONDS, wrk, wrkOnce, type WrkResult } from "./wrk.ts";

const HOST = "web.bench.localtau";
const HELLO_HOST = "hello.bench.localtau";
const HELLO_C = new URL("./fixtures/hello_server.c", import.meta.url).pathname;

const HELLO_YAML = `container: hello:1
port: 8080
command: ["/bin/hello_server", "8080"]
domains: [hello]
`;

function webYaml(version: string): string {
  return `container: busybox:latest
port: 8080
env: {VERSION: "${version}"}
command: ["sh", "-c", "mkdir -p /srv && head -c 4096 /dev/zero | tr '\\\\0' x > /srv/index.html && exec httpd -f -p 8080 -h /srv"]
domains: [bench]
paths: [/]
`;
}

export async function runContainerServingBench(): Promise<void> {
  const problem = (await containerSupportProblem()) ??
    (!(await has("wrk")) ? "wrk is not installed" : null) ??
    (!(await haveBusybox()) ? "busybox-static is not installed" : null);
  if (problem) {
    console.log(`container serving bench skipped: ${problem}`);
    return;
  }
  const work = await Deno.makeTempDir({ prefix: "tau-cbench-" });
  const data = join(work, "data");
  const cloud = await startCloud(data);
  // The node is not pinned here: containers it starts inherit its CPU affinity, and the standalone baseline
  // container does not, so pinning the node would squeeze the proxied container onto one core with it.
  try {
    const run = async (args: string[], cwd = work) => {
      const r = await tau(args, { cwd });
      if (r.code !== 0) throw new Error(`tau ${args.join(" ")}: ${r.stderr}`);
      return r;
    };
    await writeOciLayout(join(work, "oci"), { layers: [await busyboxLayer()] }, "busybox:latest");
    await run(["image", "import", join(work, "oci"), "--data", join(data, "containers")]);
    await run(["new", "project", "bench", "--cloud", cloud.url]);
    const project = join(work, "bench");
    const config = join(project, "config");
    await run(["new", "domain", "bench", "--fqdn", HOST], project);
    await run(["new", "domain", "hello", "--fqdn", HELLO_HOST], project);
    const helloBin = join(work, "hello_server");
    const cc = await new Deno.Command("cc", { args: ["-static", "-O2", "-o", helloBin, HELLO_C] }).output();
    if (!cc.success) throw new Error(`cc hello_server.c: ${new TextDecoder().decode(cc.stderr)}`);
    const helloLayer = tar([{ name: "bin", type: "dir" }, {
      name: "bin/hello_server",
      data: await Deno.readFile(helloBin),
      mode: 0o755,
    }]);
    await writeOciLayout(join(work, "hello-oci"), { layers: [await busyboxLayer(), helloLayer] }, "hello:1");
    await run(["image", "import", join(work, "hello-oci"), "--data", join(data, "containers")]);
    await Deno.mkdir(join(config, "containers"));
    await Deno.writeTextFile(join(config, "containers/web.yaml"), webYaml("1"));
    await Deno.writeTextFile(join(config, "containers/hello.yaml"), HELLO_YAML);

    const live = async (commit: string) => {
      const job = await waitForBuild(cloud.url, "bench", commit);
      if (job.status !== "success") throw new Error(`build failed: ${job.error}`);
    };
    const t0 = performance.now();
    const first = await commitAndPush(config, "web 1");
    await live(first);
    for (let i = 0; i < 500 && (await hostRequest(cloud.port, HOST, "/")).status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const pushToLive = performance.now() - t0;

    // The baseline: the same image and command, run standalone with a published TCP port.
    const statefile = join(work, "direct.yml");
    await Deno.writeTextFile(
      statefile,
      webYaml("direct").replace(/domains:.*\n|paths:.*\n/g, "").replace("port: 8080", 'ports: ["18310:8080"]'),
    );
    await run(["container", "run", statefile, "--data", join(data, "containers")]);
    await wrkOnce("http://127.0.0.1:18310/"); // warm-up
    const base = await wrk("http://127.0.0.1:18310/");
    await wrkOnce(`${cloud.url}/`, HOST);
    const viaGateway = await wrk(`${cloud.url}/`, HOST);
    const helloFile = join(work, "hello-direct.yml");
    await Deno.writeTextFile(
      helloFile,
      HELLO_YAML.replace("domains: [hello]\n", "").replace("port: 8080", 'ports: ["18311:8080"]'),
    );
    await run(["container", "run", helloFile, "--data", join(data, "containers")]);
    await wrkOnce("http://127.0.0.1:18311/");
    const helloBase = await wrk("http://127.0.0.1:18311/");
    await wrkOnce(`${cloud.url}/`, HELLO_HOST);
    const helloViaGateway = await wrk(`${cloud.url}/`, HELLO_HOST);

    // Redeploy while wrk runs: every answer must still be a 200.
    await Deno.writeTextFile(join(config, "containers/web.yaml"), webYaml("2"));
    const loaded = wrkOnce(`${cloud.url}/`, HOST, { seconds: 8, countErrors: true });
    await new Promise((r) => setTimeout(r, 2000));
    const r0 = performance.now();
    await live(await commitAndPush(config, "web 2"));
    const redeploy = performance.now() - r0;
    const during = await loaded;

    const line = (label: string, r: WrkResult, note = "", baseline = base) =>
      console.log(
        `${label.padEnd(34)} ${r.rps.toFixed(0).padStart(8)} req/s  ratio ${(r.rps / baseline.rps).toFixed(2)}  ` +
          `p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${note}` +
          (r.socketErrors ? `  socket errors: ${r.socketErrorText}` : ""),
      );
    console.log(`\ncontainers behind the gateway, wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, median of 3`);
    line("busybox httpd, direct TCP port", base, "  (baseline)");
    line("same, through the gateway", viaGateway);
    line("keep-alive hello, direct TCP port", helloBase, "  (baseline)", helloBase);
    line("same, through the gateway", helloViaGateway, "", helloBase);
    console.log(`push -> first 200 of a new container deploy: ${pushToLive.toFixed(0)} ms`);
    console.log(
      `redeploy under load: push -> live ${redeploy.toFixed(0)} ms; during 8 s of wrk: ${during.requests} requests, ` +
        `${during.failed} non-2xx, socket errors: ${during.socketErrorText || "none"}`,
    );
  } catch (err) {
    console.error(`container serving bench failed; the node's last output:\n${cloud.output().slice(-3000)}`);
    throw err;
  } finally {
    await cloud.stop();
    // The standalone baseline container is not the node's: remove what is left through the CLI.
    const ls = await tau(["container", "ls", "--data", join(data, "containers")]);
    for (const row of ls.stdout.split("\n").slice(1)) {
      const id = row.split(/\s+/)[0];
      if (id) await tau(["container", "rm", "-f", id, "--data", join(data, "containers")]);
    }
    const runRoot = await Deno.realPath(join(data, "containers/run")).catch(() => null);
    if (runRoot) await Deno.remove(runRoot, { recursive: true }).catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runContainerServingBench();
