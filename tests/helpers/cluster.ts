/**
 * A multi-node cloud for tests: separate `tau serve --root --shape` processes on 127.0.0.11, .12, ... (all of
 * 127.0.0.0/8 is local), configured with the real `tau config generate`. Each node can be stopped, killed with -9 and
 * started again on the same root (same peer id, same data).
 */
import { join } from "node:path";
import { ensureInstalled, MAIN, tau } from "./cloud.ts";

export interface NodeSpec {
  shape: string;
  /** Comma list, or "all". */
  services?: string;
}

export interface TestNode {
  index: number;
  ip: string;
  shape: string;
  root: string;
  http: number;
  p2p: number;
  dns: number;
  url: string;
  multiaddr: string;
  peerId: string;
  pid?: number;
  output(): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export interface TestCluster {
  dir: string;
  nodes: TestNode[];
  /** Waits (bounded) until every running node lists every running node as alive. */
  settled(timeoutMs?: number): Promise<void>;
  /** Generates, starts and adds one more node (bootstrapping from the first). */
  add(spec: NodeSpec): Promise<TestNode>;
  stop(): Promise<void>;
}

/** One node on its own (a new swarm key): config generated under `root`, started. */
export async function startTestNode(
  root: string,
  opts: { ip: string; http: number; shape: string; services?: string },
): Promise<TestNode> {
  await ensureInstalled();
  const r = await tau([
    "config",
    "generate",
    "--root",
    root,
    "--cloud",
    "example.test",
    "--shape",
    opts.shape,
    "--ip",
    opts.ip,
    "--services",
    opts.services ?? "all",
    "--http",
    String(opts.http),
    "--p2p",
    String(opts.http + 1),
    "--dns",
    String(opts.http + 2),
    "--new-swarm-key",
  ]);
  if (r.code !== 0) throw new Error(`tau config generate failed: ${r.stderr}`);
  const node = testNode(
    0,
    opts.ip,
    opts.shape,
    root,
    opts.http,
    opts.http + 1,
    opts.http + 2,
    r.stdout.trim().split("\n").pop()!,
  );
  await node.start();
  return node;
}

/** Ports from a base that differs per test file, so files run in parallel without clashes. */
export async function startTestCluster(
  specs: NodeSpec[],
  opts: { basePort: number; cloud?: string; swarmKey?: boolean; firstIp?: number } = { basePort: 20000 },
): Promise<TestCluster> {
  await ensureInstalled();
  const dir = await Deno.makeTempDir({ prefix: "tau-cluster-" });
  const cloud = opts.cloud ?? "example.test";
  const nodes: TestNode[] = [];
  let firstAddr = "";
  const generate = async (i: number, spec: NodeSpec): Promise<TestNode> => {
    const ip = `127.0.0.${(opts.firstIp ?? 11) + i}`;
    const root = join(dir, `n${i + 1}`);
    const http = opts.basePort + i * 10, p2p = http + 1, dns = http + 2;
    const args = [
      "config",
      "generate",
      "--root",
      root,
      "--cloud",
      cloud,
      "--shape",
      spec.shape,
      "--ip",
      ip,
      "--services",
      spec.services ?? "all",
      "--http",
      String(http),
      "--p2p",
      String(p2p),
      "--dns",
      String(dns),
    ];
    if (opts.swarmKey !== false) {
      args.push(...(i === 0 ? ["--new-swarm-key"] : ["--swarm-key", join(dir, "n1", "keys", "swarm.key")]));
    }
    if (i > 0) args.push("--bootstrap", firstAddr);
    const r = await tau(args);
    if (r.code !== 0) throw new Error(`tau config generate failed: ${r.stderr}`);
    const multiaddr = r.stdout.trim().split("\n").pop()!;
    if (i === 0) firstAddr = multiaddr;
    return testNode(i, ip, spec.shape, root, http, p2p, dns, multiaddr);
  };
  for (let i = 0; i < specs.length; i++) nodes.push(await generate(i, specs[i]));
  await Promise.all(nodes.map((n) => n.start()));
  const cluster: TestCluster = {
    dir,
    nodes,
    async settled(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      const running = () => nodes.filter((n) => n.pid !== undefined);
      while (Date.now() < deadline) {
        const views = await Promise.all(running().map((n) => nodesSeenBy(n).catch(() => [])));
        const want = running().map((n) => n.peerId).sort().join();
        if (views.every((v) => v.filter((e) => e.alive).map((e) => e.peer).sort().join() === want)) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`cluster did not settle in ${timeoutMs} ms`);
    },
    async add(spec) {
      const node = await generate(nodes.length, spec);
      nodes.push(node);
      await node.start();
      return node;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return cluster;
}

export async function nodesSeenBy(node: TestNode): Promise<{ peer: string; alive: boolean; shape: string }[]> {
  const res = await fetch(`${node.url}/api/nodes`);
  if (!res.ok) throw new Error(`GET /api/nodes on ${node.ip}: ${res.status}`);
  return await res.json();
}

function testNode(
  index: number,
  ip: string,
  shape: string,
  root: string,
  http: number,
  p2p: number,
  dns: number,
  multiaddr: string,
): TestNode {
  let child: Deno.ChildProcess | undefined;
  let out = "";
  const node: TestNode = {
    index,
    ip,
    shape,
    root,
    http,
    p2p,
    dns,
    url: `http://${ip}:${http}`,
    multiaddr,
    peerId: multiaddr.split("/p2p/")[1],
    output: () => out,
    async start() {
      if (child) return;
      child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "serve", "--root", root, "--shape", shape],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).spawn();
      node.pid = child.pid;
      const dec = new TextDecoder();
      const me = child;
      const ready = new Promise<void>((resolve, reject) => {
        const collect = async (stream: ReadableStream<Uint8Array>) => {
          for await (const chunk of stream) {
            out += dec.decode(chunk);
            if (out.includes(` ready: gateway http://${ip}:`)) resolve();
          }
        };
        collect(me.stdout).catch(() => {});
        collect(me.stderr).catch(() => {});
        me.status.then((s) => reject(new Error(`node ${ip} exited (${s.code}) before it was ready:\n${out}`)));
      });
      await ready;
    },
    async stop() {
      if (!child) return;
      const c = child;
      child = undefined;
      node.pid = undefined;
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
      }, 15_000);
      await c.status;
      clearTimeout(timer);
    },
    async kill() {
      if (!child) return;
      const c = child;
      child = undefined;
      node.pid = undefined;
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.status;
    },
  };
  return node;
}

/** Retries `fn` until it returns a truthy value (bounded); returns it, or throws with the last error. */
export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${last})` : ""}`);
}
