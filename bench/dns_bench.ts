/**
 * Seer's DNS throughput against a trivial DNS server (bench/dns_trivial_server.ts: decode, one fixed A, encode; same
 * library, same runtime) measured in the same run, interleaved, median of three rounds each. The subject is a real
 * `tau serve` node (all services, a one-node cloud) answering `gateway.tau.<cloud>` A from its service directory.
 * Load from dnsperf (Debian's dnsperf), pinned to core 1; both servers pinned to core 0 when taskset exists.
 * Modes: UDP with 1 and 32 queries in flight, TCP with 32 in flight on one connection (pipelined).
 */
import { join } from "node:path";
import { has } from "./wrk.ts";
import { freePort, startTestCloud } from "../tests/helpers/cluster.ts";
import { udpQuery } from "../tests/helpers/dns.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 4);
const ROUNDS = 3;
const CLOUD = "bench.test";
const NAME = `gateway.tau.${CLOUD}`;

interface Mode {
  label: string;
  args: string[];
}
const MODES: Mode[] = [
  { label: "UDP, 1 in flight", args: ["-m", "udp", "-c", "1", "-q", "1"] },
  { label: "UDP, 32 in flight", args: ["-m", "udp", "-c", "1", "-q", "32"] },
  { label: "TCP, 32 in flight (pipelined)", args: ["-m", "tcp", "-c", "1", "-q", "32"] },
];

async function dnsperf(ip: string, port: number, data: string, mode: Mode, pinned: boolean) {
  const args = ["-s", ip, "-p", String(port), "-d", data, "-l", String(SECONDS), "-t", "2", ...mode.args];
  const out = await new Deno.Command(pinned ? "taskset" : "dnsperf", {
    args: pinned ? ["-c", "1", "dnsperf", ...args] : args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const qps = Number(text.match(/Queries per second:\s+([\d.]+)/)?.[1] ?? NaN);
  const lost = Number(text.match(/Queries lost:\s+(\d+)/)?.[1] ?? NaN);
  if (!Number.isFinite(qps)) throw new Error(`dnsperf gave no figure:\n${text}${new TextDecoder().decode(out.stderr)}`);
  return { qps, lost };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function runDnsBench(): Promise<void> {
  if (!(await has("dnsperf"))) {
    console.log("dns bench skipped: dnsperf is not installed (apt-get install dnsperf)");
    return;
  }
  const pinned = await has("taskset");
  const work = await Deno.makeTempDir({ prefix: "tau-bench-dns-" });
  const data = join(work, "queries.txt");
  await Deno.writeTextFile(data, `${NAME} A\n`);
  const baseIp = "127.0.0.22";
  const basePort = await freePort(baseIp, true);
  const baseCmd = [Deno.execPath(), "run", "-A", new URL("./dns_trivial_server.ts", import.meta.url).pathname];
  const base = new Deno.Command(pinned ? "taskset" : baseCmd[0], {
    args: [...(pinned ? ["-c", "0", ...baseCmd] : baseCmd.slice(1)), baseIp, String(basePort)],
    stdout: "piped",
  }).spawn();
  const reader = base.stdout.getReader();
  await reader.read();
  reader.releaseLock();
  const cloud = await startTestCloud([{ shape: "bench", ip: "127.0.0.21" }], { cloud: CLOUD });
  try {
    const node = cloud.nodes[0];
    if (pinned) {
      await new Deno.Command("sh", { args: ["-c", `taskset -a -p -c 0 ${node.pid} >/dev/null`] }).output();
    }
    const check = await udpQuery(node.spec.ip, node.ports.dns, NAME);
    if (check.addresses.join() !== node.spec.ip) throw new Error(`seer answered ${JSON.stringify(check)}`);
    console.log(`dns: queries/s, median of ${ROUNDS} interleaved rounds of ${SECONDS} s (dnsperf, ${NAME} A)`);
    console.log("  mode                            trivial     seer   ratio   lost(trivial/seer)");
    for (const mode of MODES) {
      const b: number[] = [], s: number[] = [];
      let lost = [0, 0];
      // Warm-up for both (JIT, sockets), then baseline and subject alternately.
      await dnsperf(baseIp, basePort, data, { ...mode, args: [...mode.args] }, pinned);
      await dnsperf(node.spec.ip, node.ports.dns, data, mode, pinned);
      for (let r = 0; r < ROUNDS; r++) {
        const x = await dnsperf(baseIp, basePort, data, mode, pinned);
        const y = await dnsperf(node.spec.ip, node.ports.dns, data, mode, pinned);
        b.push(x.qps);
        s.push(y.qps);
        lost = [lost[0] + x.lost, lost[1] + y.lost];
      }
      const mb = median(b), ms = median(s);
      console.log(
        `  ${mode.label.padEnd(30)} ${mb.toFixed(0).padStart(8)} ${ms.toFixed(0).padStart(8)}   ${
          (ms / mb).toFixed(2)
        }   ${lost[0]}/${lost[1]}`,
      );
    }
  } finally {
    await cloud.stop();
    base.kill("SIGTERM");
    await base.status;
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runDnsBench();
