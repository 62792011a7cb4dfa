/**
 * `deno task bench`: every figure is printed next to a baseline measured in the same run (raw Deno.serve for the
 * gateway, crun for containers, the container's own port for containers behind the gateway).
 * `deno task bench gateway`, `deno task bench containers` (runtime and serving), `deno task bench serving` or
 * `deno task bench multinode` (forwarding, replication, idle memory of a 3-node cloud), `deno task bench dns`
 * (seer against a trivial DNS server) or `deno task bench hoard` (a 64 MiB CID fetched from another node vs read
 * locally) or `deno task bench abi` (one host call, Taubyte's ABI against tau's) or `deno task bench data`
 * (databases and storages through a function against Deno KV and Helia directly) or `deno task bench memory` (idle
 * PSS of a tau dev node after start, after a build and after serving, by part, against a raw Deno.serve) or
 * `deno task bench cores` (one serving isolate against two on one port), `deno task bench commands` (a p2p
 * command's round trip, on one node and across two, against an HTTP call to the same function) or `deno task bench
 * pubsub` (publish -> WebSocket receive on one node and across two, fan-out to 1,000 clients) runs one part.
 */
import { runGatewayBench } from "./gateway_bench.ts";
import { runContainerBench } from "./container_bench.ts";
import { runContainerServingBench } from "./container_serving_bench.ts";
import { runMultinodeBench } from "./multinode_bench.ts";
import { runDnsBench } from "./dns_bench.ts";
import { runHoardBench } from "./hoard_bench.ts";
import { runAbiBench } from "./abi_bench.ts";
import { runDataBench } from "./data_bench.ts";
import { runCoresBench } from "./cores_bench.ts";
import { runMemoryBench } from "./memory_bench.ts";
import { runCommandsBench } from "./commands_bench.ts";
import { runPubsubBench } from "./pubsub_bench.ts";

const only = Deno.args[0];
if (!only || only === "gateway") await runGatewayBench();
if (!only || only === "containers") await runContainerBench();
if (!only || only === "containers" || only === "serving") await runContainerServingBench();
if (!only || only === "multinode") await runMultinodeBench();
if (!only || only === "dns") await runDnsBench();
if (!only || only === "hoard") await runHoardBench();
if (!only || only === "abi") await runAbiBench();
if (!only || only === "data") await runDataBench();
if (!only || only === "cores") await runCoresBench();
if (!only || only === "memory") await runMemoryBench();
if (!only || only === "commands") await runCommandsBench();
if (!only || only === "pubsub") await runPubsubBench();
