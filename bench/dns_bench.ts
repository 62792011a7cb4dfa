/**
 * Seer's DNS throughput against a trivial DNS server (bench/dns_trivial_server.ts: decode, one fixed A, encode; same
 * library, same runtime) measured in the same run, interleaved, median of nine 1 s rounds each (short rounds: the shared machine's load moves within seconds). The subject is a real
 * `tau serve` node (all services, a one-node cloud) answering `gateway.tau.<cloud>` A from its service directory.
 * Load from dnsperf (Debian's dnsperf), pinned to core 1; both servers pinned to core 0 when taskset exists.
 * Modes: UDP with 1 and 32 queries in flight, TCP with 32 in flight on one connection (pipelined).
 */
import { join } from "node:path";
import { has } from "./wrk.ts";
import { freePort, startTestCloud } from "../tests/helpers/cluster.ts";
import { udpQuery } from "../tests/helpers/dns.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 1);
const ROUNDS = 9;
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
  const completed = Number(text.match(/Queries completed:\s+(\d+)/)?.[1] ?? NaN);
  const lost = Number(text.match(/Queries lost:\s+(\d+)/)?.[1] ?? NaN);
  if (!Number.isFinite(qps)) throw new Error(`dnsperf gave no figure:\n${text}${new TextDecoder().decode(out.stderr)}`);
  return { qps, lost, completed };
}

/**
 * CPU time (user + system, ms) a process has used. Per query it is a steadier figure than queries/s on a shared
 * machine: other tenants' load slows a server down but hardly changes what each answer costs it.
 */
async function cpuMs(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime in clock ticks (100 Hz)
}

async function waitIdle(pid: number): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const c0 = await cpuMs(pid);
    await new Promise((r) => setTimeout(r, 1000));
    if ((await cpuMs(pid)) - c0 <= 20) return;
  }
  console.log("  (the node never went idle within 60 s: figures include its background work)");
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
    // A fresh node spends its first ~15 s warming up (the build worker's compiler: 100-280 ms of CPU a second);
    // measured from then on it would be charged to the answers. Idle is ~2 ms a second.
    await waitIdle(node.pid!);
    const check = await udpQuery(node.spec.ip, node.ports.dns, NAME);
    if (check.addresses.join() !== node.spec.ip) throw new Error(`seer answered ${JSON.stringify(check)}`);
    console.log(`dns: median queries/s of ${ROUNDS} interleaved ${SECONDS} s rounds, and CPU us per answer over all`);
    console.log(`     rounds (dnsperf on core 1, servers on core 0; ${NAME} A)`);
    console.log("  mode                            trivial     seer   ratio | cpu us/q trivial  seer | lost");
    for (const mode of MODES) {
      const b: number[] = [], s: number[] = [];
      const cpu = { base: 0, seer: 0, baseQ: 0, seerQ: 0 };
      let lost = [0, 0];
      // Warm-up for both (JIT, sockets), then baseline and subject alternately.
      await dnsperf(baseIp, basePort, data, mode, pinned);
      await dnsperf(node.spec.ip, node.ports.dns, data, mode, pinned);
      for (let r = 0; r < ROUNDS; r++) {
        let c0 = await cpuMs(base.pid);
        const x = await dnsperf(baseIp, basePort, data, mode, pinned);
        cpu.base += (await cpuMs(base.pid)) - c0;
        cpu.baseQ += x.completed;
        c0 = await cpuMs(node.pid!);
        const y = await dnsperf(node.spec.ip, node.ports.dns, data, mode, pinned);
        cpu.seer += (await cpuMs(node.pid!)) - c0;
        cpu.seerQ += y.completed;
        b.push(x.qps);
        s.push(y.qps);
        lost = [lost[0] + x.lost, lost[1] + y.lost];
      }
      const mb = median(b), ms = median(s);
      const us = (cpuTotal: number, q: number) => (cpuTotal * 1000 / q).toFixed(1).padStart(6);
      console.log(
        `  ${mode.label.padEnd(30)} ${mb.toFixed(0).padStart(8)} ${ms.toFixed(0).padStart(8)}   ${
          (ms / mb).toFixed(2)
        } |          ${us(cpu.base, cpu.baseQ)} ${us(cpu.seer, cpu.seerQ)} | ${lost[0]}/${lost[1]}`,
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
