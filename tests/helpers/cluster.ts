/**
 * A multi-node cloud for tests: separate `tau serve` processes, one per loopback address (127.0.0.11, .12, ...: all
 * of 127.0.0.0/8 is local), each with its own root written by the real `tau config generate` (the first node makes
 * the swarm key, the others take it and bootstrap from the first). Ports are picked free on each node's address.
 *
 *   const cloud = await startTestCloud([
 *     { shape: "core", ip: "127.0.0.11" },                            // all services
 *     { shape: "edge", ip: "127.0.0.13", services: "gateway,seer" },
 *   ]);
 *   try {
 *     await cloud.waitMesh();          // every running node sees every other alive in GET /api/nodes
 *     await cloud.nodes[1].kill();     // kill -9 by PID; .stop() is SIGTERM; .start() starts it again
 *   } finally {
 *     await cloud.stop();              // every process this cloud started, by PID; its folders removed
 *   }
 *
 * Each node's stdout and stderr are kept (`node.logs()`, `cloud.logs()` for a failure message).
 */
import dgram from "node:dgram";
import { join } from "node:path";
import { NODE_V8_FLAGS_ARG } from "../../runtime/wasm/v8_flags.ts";
import { ensureInstalled, MAIN, NODE_MODULES_MANUAL, tau } from "./cloud.ts";
import { editShapeYaml } from "../../services/config/shape.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 15_000;

export interface NodeSpec {
  /** The shape's name (its config file, <root>/config/<shape>.yaml). */
  shape: string;
  ip: string;
  /** "all" (the default) or a comma list, as `tau config generate --services` takes it. */
  services?: string;
}

export interface TestNode {
  spec: NodeSpec;
  root: string;
  peerId: string;
  multiaddr: string;
  /** http://IP:PORT: the node's gateway, API and git. */
  url: string;
  ports: { http: number; p2p: number; dns: number };
  /** PID of the running process, undefined while stopped. */
  pid?: number;
  logs(): string;
  /** Start (or restart) the process; resolves on its ready line. */
  start(): Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited after 15 s. */
  stop(): Promise<void>;
  /** kill -9. */
  kill(): Promise<void>;
  /** Send a signal (SIGSTOP/SIGCONT to pause a node). */
  signal(sig: Deno.Signal): void;
}

export interface TestCloud {
  cloud: string;
  dir: string;
  nodes: TestNode[];
  /** Until every running node lists every other running node alive (bounded). */
  waitMesh(timeoutMs?: number): Promise<void>;
  /** One more node, generated like the others (the first node's swarm key and address), started. */
  add(spec: NodeSpec): Promise<TestNode>;
  logs(): string;
  stop(): Promise<void>;
}

/** A port free on `ip` for TCP (and UDP too when asked: DNS takes both). */
export async function freePort(ip: string, udp = false): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const l = Deno.listen({ hostname: ip, port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    if (!udp) return port;
    const sock = dgram.createSocket("udp4");
    const ok = await new Promise<boolean>((resolve) => {
      sock.once("error", () => resolve(false));
      sock.bind(port, ip, () => resolve(true));
    });
    await new Promise<void>((resolve) => sock.close(() => resolve()));
    if (ok) return port;
  }
  throw new Error(`no free port on ${ip}`);
}

export async function startTestCloud(
  specs: NodeSpec[],
  opts: {
    cloud?: string;
    dir?: string;
    /** Generate with --dv; `resolver` (IP:PORT) is the DNS server domain validation asks (domains.dv-resolver). */
    dv?: { resolver: string };
    /** YAML appended to every node's shape config after generation (e.g. a `hoarder:` map). */
    appendYaml?: string;
  } = {},
): Promise<TestCloud> {
  await ensureInstalled();
  const cloud = opts.cloud ?? "cloud.test";
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "tau-cloud-" });
  const nodes: TestNode[] = [];
  let generateMore: (spec: NodeSpec) => Promise<TestNode> = () => Promise.reject(new Error("no first node"));
  try {
    // The first node makes the swarm key; the others take it and bootstrap from the first (generated in parallel).
    const generate = async (spec: NodeSpec, first?: TestNode): Promise<TestNode> => {
      const root = join(dir, `${spec.shape}-${spec.ip}`);
      const ports = { http: await freePort(spec.ip), p2p: await freePort(spec.ip), dns: await freePort(spec.ip, true) };
      const args = [
        "config",
        "generate",
        ...["--root", root, "--cloud", cloud, "--shape", spec.shape, "--ip", spec.ip],
        ...["--services", spec.services ?? "all", "--http", `${ports.http}`, "--p2p", `${ports.p2p}`],
        ...["--dns", `${ports.dns}`],
        ...(first
          ? ["--swarm-key", join(first.root, "keys", "swarm.key"), "--bootstrap", first.multiaddr]
          : ["--new-swarm-key"]),
        ...(opts.dv ? ["--dv"] : []),
      ];
      const r = await tau(args);
      if (r.code !== 0) throw new Error(`tau config generate failed for ${spec.shape}: ${r.stderr}`);
      if (opts.dv) {
        const file = join(root, "config", `${spec.shape}.yaml`);
        await Deno.writeTextFile(
          file,
          editShapeYaml(await Deno.readTextFile(file), { "domains.dv-resolver": opts.dv.resolver }),
        );
      }
      if (opts.appendYaml) {
        await Deno.writeTextFile(join(root, "config", `${spec.shape}.yaml`), opts.appendYaml, { append: true });
      }
      return newNode(spec, root, ports, r.stdout.trim().split("\n").at(-1)!);
    };
    const first = await generate(specs[0]);
    generateMore = (spec) => generate(spec, first);
    nodes.push(first, ...await Promise.all(specs.slice(1).map((s) => generate(s, first))));
    await Promise.all(nodes.map((n) => n.start()));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    if (!opts.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
  const logs = () => nodes.map((n) => `--- ${n.spec.shape} ${n.spec.ip} ---\n${n.logs()}`).join("\n");
  return {
    cloud,
    dir,
    nodes,
    logs,
    async waitMesh(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (true) {
        const running = nodes.filter((n) => n.pid !== undefined);
        const want = running.map((n) => n.peerId);
        const seen = await Promise.all(running.map(async (n) => {
          try {
            const list = await (await fetch(`${n.url}/api/nodes`, { signal: AbortSignal.timeout(2_000) })).json() as {
              peer: string;
              alive: boolean;
            }[];
            return want.every((p) => list.some((e) => e.peer === p && e.alive));
          } catch {
            return false;
          }
        }));
        if (seen.every(Boolean)) return;
        if (Date.now() > deadline) {
          throw new Error(`the nodes did not all see each other within ${timeoutMs} ms\n${logs()}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async add(spec) {
      const node = await generateMore(spec);
      nodes.push(node);
      await node.start();
      return node;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      if (!opts.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

function newNode(spec: NodeSpec, root: string, ports: TestNode["ports"], multiaddr: string): TestNode {
  let out = "";
  let child: Deno.ChildProcess | undefined;
  const peerId = multiaddr.split("/p2p/")[1];
  const node: TestNode = {
    spec,
    root,
    peerId,
    multiaddr,
    url: `http://${spec.ip}:${ports.http}`,
    ports,
    logs: () => out,
    async start() {
      if (child) throw new Error(`node ${spec.shape} is already running (pid ${child.pid})`);
      const proc = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          NODE_MODULES_MANUAL,
          NODE_V8_FLAGS_ARG,
          MAIN,
          "serve",
          "--root",
          root,
          "--shape",
          spec.shape,
        ],
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      child = proc;
      node.pid = proc.pid;
      out += `[started pid ${proc.pid}]\n`;
      const dec = new TextDecoder();
      let ready: () => void = () => {};
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      const collect = async (stream: ReadableStream<Uint8Array>) => {
        for await (const chunk of stream) {
          out += dec.decode(chunk, { stream: true });
          if (/ready: gateway/.test(out.slice(out.lastIndexOf("[started pid")))) ready();
        }
      };
      const done = Promise.all([collect(proc.stdout), collect(proc.stderr)]).catch(() => {});
      proc.status.then(async (s) => {
        await done;
        out += `[pid ${proc.pid} exited: ${s.signal ?? s.code}]\n`;
        if (child === proc) {
          child = undefined;
          node.pid = undefined;
        }
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          isReady,
          proc.status.then((s) => {
            throw new Error(`node ${spec.shape} exited (${s.signal ?? s.code}) before it was ready:\n${out}`);
          }),
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`node ${spec.shape} not ready after ${READY_TIMEOUT_MS} ms:\n${out}`)),
              READY_TIMEOUT_MS,
            );
          }),
        ]);
      } catch (err) {
        await node.kill();
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },
    signal(sig) {
      child?.kill(sig);
    },
    async stop() {
      const proc = child;
      if (!proc) return;
      try {
        proc.kill("SIGCONT"); // a paused node cannot act on SIGTERM
        proc.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          proc.kill("SIGKILL");
        } catch { /* gone */ }
      }, STOP_GRACE_MS);
      await proc.status;
      clearTimeout(timer);
      await waitGone(node, proc);
    },
    async kill() {
      const proc = child;
      if (!proc) return;
      try {
        proc.kill("SIGKILL");
      } catch { /* already gone */ }
      await proc.status;
      await waitGone(node, proc);
    },
  };
  return node;
}

/** Until the exit handler above has run (so `pid` and `start()` see the node stopped). */
async function waitGone(node: TestNode, proc: Deno.ChildProcess) {
  for (let i = 0; i < 100 && node.pid === proc.pid; i++) await new Promise((r) => setTimeout(r, 10));
}

/** What a node lists in GET /api/nodes. */
export async function nodesSeenBy(node: TestNode): Promise<{ peer: string; alive: boolean; shape: string }[]> {
  const res = await fetch(`${node.url}/api/nodes`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET /api/nodes on ${node.spec.ip}: ${res.status}`);
  return await res.json();
}

/** Retries `fn` until it returns a value (bounded); returns it, or throws with the last error. */
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
