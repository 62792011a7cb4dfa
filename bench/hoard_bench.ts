/**
 * `deno task bench hoard`: a 64 MiB CID fetched from another node (bitswap over the node's libp2p: TCP, noise,
 * yamux, and pnet when the cloud has a swarm key) against a local read of the same CID, in the same run.
 * Two node pairs, one with a swarm key and one without; rounds interleave them (and alternate which goes first), and
 * every figure is a median. Each fetch starts cold: the fetcher deletes the DAG's blocks first.
 *   fetch      hoarder's path: every block of the DAG into the fetcher's store (runtime/storage/dag.ts)
 *   remote cat a gateway's miss: the whole file read through UnixFS while its blocks come from the peer
 *   local cat  the same file read on the fetcher once its blocks are there
 * Then the walk's concurrency (blocks in flight) against fetch speed, on the keyed pair.
 */
import { newSwarmKey } from "../services/p2p/keys.ts";
import { join } from "node:path";
import { freePort } from "../tests/helpers/cluster.ts";

const MIB = 64;
const ROUNDS = 5;
const CONCURRENCY = [1, 8, 32, 64];
const CONCURRENCY_ROUNDS = 3;

interface Peer {
  addr: string;
  send(cmd: Record<string, unknown>): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function startPeer(ip: string, keyFile?: string): Promise<Peer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./hoard_peer.ts", import.meta.url).pathname,
      ip,
      String(await freePort(ip)),
      ...(keyFile ? [keyFile] : []),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const answers: ((line: string) => void)[] = [];
  const dec = new TextDecoder();
  (async () => {
    let buffered = "";
    for await (const chunk of child.stdout) {
      buffered += dec.decode(chunk);
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        answers.shift()?.(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    }
  })();
  const next = () => new Promise<string>((resolve) => answers.push(resolve));
  const first = JSON.parse(await next()) as { addr: string };
  return {
    addr: first.addr,
    async send(cmd) {
      const answer = next();
      await writer.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
      const out = JSON.parse(await answer) as Record<string, unknown>;
      if (out.error) throw new Error(`${cmd.op}: ${out.error}`);
      return out;
    },
    async stop() {
      await writer.write(new TextEncoder().encode(`{"op":"quit"}\n`)).catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = (ms: number) => `${(MIB / (ms / 1000)).toFixed(0).padStart(4)} MiB/s`;

export async function runHoardBench(): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "tau-bench-hoard-" });
  const keyFile = join(work, "swarm.key");
  await Deno.writeTextFile(keyFile, newSwarmKey());
  const peers: Peer[] = [];
  try {
    const start = async (ip: string, key?: string) => {
      const p = await startPeer(ip, key);
      peers.push(p);
      return p;
    };
    const pairs = {
      "swarm key": { holder: await start("127.0.0.41", keyFile), fetcher: await start("127.0.0.42", keyFile) },
      "no key": { holder: await start("127.0.0.43"), fetcher: await start("127.0.0.44") },
    };
    const cids: Record<string, string> = {};
    for (const [name, { holder, fetcher }] of Object.entries(pairs)) {
      await fetcher.send({ op: "connect", addr: holder.addr });
      const added = await holder.send({ op: "add", mib: MIB });
      cids[name] = added.cid as string;
      console.log(
        `hoard bench (${name}): ${MIB} MiB CID of ${added.blocks} blocks added in ${Math.round(added.ms as number)} ms`,
      );
    }
    type Times = Record<"fetch" | "remoteCat" | "localCat" | "fetcherCpu" | "holderCpu", number[]>;
    const times: Record<string, Times> = {};
    for (const name of Object.keys(pairs)) {
      times[name] = { fetch: [], remoteCat: [], localCat: [], fetcherCpu: [], holderCpu: [] };
    }
    const cpu = async (p: Peer) => (await p.send({ op: "cpu" })).ms as number;
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? Object.keys(pairs) : Object.keys(pairs).reverse();
      for (const name of order) {
        const { holder, fetcher } = pairs[name as keyof typeof pairs];
        const cid = cids[name];
        const t = times[name];
        await fetcher.send({ op: "drop", cid });
        const [f0, h0] = [await cpu(fetcher), await cpu(holder)];
        t.fetch.push((await fetcher.send({ op: "fetch", cid })).ms as number);
        t.fetcherCpu.push((await cpu(fetcher)) - f0);
        t.holderCpu.push((await cpu(holder)) - h0);
        t.localCat.push((await fetcher.send({ op: "cat", cid })).ms as number);
        await fetcher.send({ op: "drop", cid });
        t.remoteCat.push((await fetcher.send({ op: "cat", cid })).ms as number);
      }
    }
    const cell = (ms: number) => `${rate(ms)} ${String(Math.round(ms)).padStart(5)} ms`;
    console.log(`hoard bench: ${MIB} MiB across two processes on loopback, median of ${ROUNDS} interleaved rounds`);
    console.log("  pair        fetch (hoarder)        remote cat (gateway miss)  local cat (same CID)");
    for (const [name, t] of Object.entries(times)) {
      const row = [t.fetch, t.remoteCat, t.localCat].map((xs) => cell(median(xs)));
      console.log(`  ${name.padEnd(10)}  ${row.join("     ")}`);
    }
    // CPU time per fetch: what the transfer costs whatever else the machine runs, so the rate each side could reach
    // with a core to itself.
    console.log("  CPU per fetch   fetcher                    holder");
    for (const [name, t] of Object.entries(times)) {
      const [fc, hc] = [median(t.fetcherCpu), median(t.holderCpu)];
      console.log(`  ${name.padEnd(10)}      ${cell(fc)} alone    ${cell(hc)} alone`);
    }

    const { fetcher } = pairs["swarm key"];
    const byConcurrency = new Map<number, number[]>(CONCURRENCY.map((c) => [c, []]));
    for (let round = 0; round < CONCURRENCY_ROUNDS; round++) {
      for (const c of round % 2 === 0 ? CONCURRENCY : [...CONCURRENCY].reverse()) {
        await fetcher.send({ op: "drop", cid: cids["swarm key"] });
        byConcurrency.get(c)!.push(
          (await fetcher.send({ op: "fetch", cid: cids["swarm key"], concurrency: c })).ms as number,
        );
      }
    }
    console.log(`hoard bench: fetch with a swarm key by blocks in flight (median of ${CONCURRENCY_ROUNDS})`);
    for (const [c, ms] of byConcurrency) console.log(`  ${String(c).padStart(3)} in flight  ${rate(median(ms))}`);
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await runHoardBench();
