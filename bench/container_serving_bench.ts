/**
 * Containers served by the gateway (root), deployed through git and measured under wrk through the gateway against
 * the same container reached directly on its published 127.0.0.1 port (the helper's forwarder), in the same run:
 * busybox httpd (a new connection per request) and a keep-alive hello server (bench/fixtures/hello_server.c), which
 * shows the proxy's own cost. The two alternate (direct, gateway, direct, ...), BENCH_PAIRS pairs (5), and each
 * figure is a median with its spread; the node's CPU time per request is printed too (steadier on a shared VM).
 * Also: push -> first 200 of a container deploy, and a redeploy under wrk load.
 */
import { join } from "node:path";
import { busyboxLayer, haveBusybox, tar, writeOciLayout } from "../tests/container/fixture.ts";
import { commitAndPush, hostRequest, startCloud, tau, waitForBuild } from "../tests/helpers/cloud.ts";
import { containerSupportProblem } from "../runtime/container/runtime.ts";
import { CONNECTIONS, has, SECONDS, wrkOnce, type WrkResult } from "./wrk.ts";
import { interleave, spread } from "./pairs.ts";

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

const PAIRS = Number(Deno.env.get("BENCH_PAIRS") ?? 5);

interface GatewayRun {
  wrk: WrkResult;
  /** CPU time of the node's process per request, in microseconds */
  nodeUs: number;
}

/** User + system CPU time of a process, in ms (clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** The same container reached directly and through the gateway, alternating, after one warm-up run of each. */
async function directAndGateway(cloud: { url: string; pid: number }, direct: string, host: string) {
  return await interleave(
    PAIRS,
    () => wrkOnce(direct),
    async (): Promise<GatewayRun> => {
      const c0 = await cpuMs(cloud.pid);
      const r = await wrkOnce(`${cloud.url}/`, host);
      return { wrk: r, nodeUs: ((await cpuMs(cloud.pid)) - c0) * 1000 / r.requests };
    },
    1,
  );
}

function printPairs(label: string, p: { baseline: WrkResult[]; subject: GatewayRun[] }, goal = ""): void {
  const ratios = p.subject.map((s, i) => s.wrk.rps / p.baseline[i].rps);
  const errors = (rs: WrkResult[]) => {
    const n = rs.reduce((sum, r) => sum + r.socketErrors, 0);
    return n ? `  socket errors in all runs: ${n}` : "";
  };
  console.log(`${label}:`);
  console.log(
    `  direct TCP port       ${spread(p.baseline.map((r) => r.rps))} req/s  p99 ${
      spread(p.baseline.map((r) => r.p99), 2)
    } ms${errors(p.baseline)}`,
  );
  console.log(
    `  through the gateway   ${spread(p.subject.map((s) => s.wrk.rps))} req/s  p99 ${
      spread(p.subject.map((s) => s.wrk.p99), 2)
    } ms  node CPU ${spread(p.subject.map((s) => s.nodeUs))} us/request${errors(p.subject.map((s) => s.wrk))}`,
  );
  console.log(`  ratio gateway/direct  ${spread(ratios, 2)} (each pair's own ratio)${goal}`);
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
    const helloFile = join(work, "hello-direct.yml");
    await Deno.writeTextFile(
      helloFile,
      HELLO_YAML.replace("domains: [hello]\n", "").replace("port: 8080", 'ports: ["18311:8080"]'),
    );
    await run(["container", "run", helloFile, "--data", join(data, "containers")]);
    const web = await directAndGateway(cloud, "http://127.0.0.1:18310/", HOST);
    const hello = await directAndGateway(cloud, "http://127.0.0.1:18311/", HELLO_HOST);

    // Redeploy while wrk runs: every answer must still be a 200.
    await Deno.writeTextFile(join(config, "containers/web.yaml"), webYaml("2"));
    const loaded = wrkOnce(`${cloud.url}/`, HOST, { seconds: 8, countErrors: true });
    await new Promise((r) => setTimeout(r, 2000));
    const r0 = performance.now();
    await live(await commitAndPush(config, "web 2"));
    const redeploy = performance.now() - r0;
    const during = await loaded;

    console.log(
      `\ncontainers behind the gateway, wrk -t1 -c${CONNECTIONS} -d${SECONDS}s, ${PAIRS} interleaved pairs ` +
        "(direct, gateway, direct, ...), medians (spread min-max)",
    );
    printPairs("busybox httpd (a new connection per request)", web);
    printPairs("keep-alive hello", hello, "  (goal >= 0.6)");
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
