/**
 * One node for the hoard benchmark: the libp2p node and content store a `tau serve` node runs (services/p2p/node.ts,
 * runtime/storage/helia.ts with bitswap), driven by JSON lines on stdin, one JSON answer line per command on stdout.
 *   {"op":"add","mib":64}               -> {"cid","blocks","ms"}      random bytes added as one UnixFS file
 *   {"op":"connect","addr":"/ip4/..."}  -> {"ok"}
 *   {"op":"fetch","cid","concurrency"}  -> {"ms","bytes","blocks"}    every missing block of the DAG from peers
 *   {"op":"cat","cid"}                  -> {"ms","bytes"}             the whole file through UnixFS (local or not)
 *   {"op":"drop","cid"}                 -> {"freed"}                  delete the DAG's blocks (the next fetch is cold)
 *   {"op":"cpu"}                        -> {"ms"}                     CPU time (user + system) this process used
 * Started as: hoard_peer.ts IP PORT [SWARM_KEY_FILE]; prints {"addr"} first.
 */
import { startP2p } from "../services/p2p/node.ts";
import { newIdentity, parseSwarmKey } from "../services/p2p/keys.ts";
import { openContentStore } from "../runtime/storage/helia.ts";
import { walkDag } from "../runtime/storage/dag.ts";
import { CID } from "multiformats/cid";

const [ip, port, keyFile] = Deno.args;
const swarmKey = keyFile ? parseSwarmKey(await Deno.readTextFile(keyFile), keyFile) : undefined;
const p2p = await startP2p({
  identity: await newIdentity(),
  listen: [`/ip4/${ip}/tcp/${port}`],
  bootstrap: [],
  swarmKey,
});
const dir = await Deno.makeTempDir({ prefix: "tau-hoard-bench-" });
const store = await openContentStore(dir, { libp2p: p2p.libp2p });
const say = (v: unknown) => console.log(JSON.stringify(v));
/** utime + stime of this process from /proc (clock ticks of 10 ms). */
async function cpuMs(): Promise<number> {
  const fields = (await Deno.readTextFile("/proc/self/stat")).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
say({ addr: p2p.addresses()[0] });

async function* lines(): AsyncGenerator<string> {
  let buffered = "";
  for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buffered += text;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
}

for await (const line of lines()) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line);
  const t0 = performance.now();
  try {
    if (cmd.op === "add") {
      const bytes = new Uint8Array(cmd.mib << 20);
      for (let at = 0; at < bytes.length; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
      const cid = await store.addBytes(bytes);
      say({ cid, blocks: (await store.localBlocks(cid)).length, ms: performance.now() - t0 });
    } else if (cmd.op === "connect") {
      say({ ok: await p2p.connect([cmd.addr]) });
    } else if (cmd.op === "fetch") {
      const r = await walkDag(store.helia, CID.parse(cmd.cid), {
        fetch: true,
        concurrency: cmd.concurrency,
        signal: AbortSignal.timeout(120_000),
      });
      say({ ms: performance.now() - t0, bytes: r.fetchedBytes, blocks: r.blocks.length });
    } else if (cmd.op === "cat") {
      const bytes = await store.cat(cmd.cid);
      say({ ms: performance.now() - t0, bytes: bytes.length });
    } else if (cmd.op === "drop") {
      say({ freed: await store.deleteBlocks(await store.localBlocks(cmd.cid)) });
    } else if (cmd.op === "cpu") {
      say({ ms: await cpuMs() });
    } else if (cmd.op === "quit") {
      break;
    }
  } catch (err) {
    say({ error: (err as Error).message });
  }
}
await store.close();
await p2p.stop();
await Deno.remove(dir, { recursive: true });
