/**
 * A cloud of separate `tau serve` processes on 127.0.0.x addresses (all of 127.0.0.0/8 is this machine), set up the
 * way an operator does it: a generated config for each node (the first with a new swarm key, the others with that
 * key and the first as bootstrap), then `tau serve --root --shape`. Ports are picked free per address, so clouds of
 * other test files (or other worktrees) on the same addresses do not collide.
 */
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { ensureInstalled, hostRequest, type HostResponse, MAIN, tau } from "./cloud.ts";
import { generateShapeConfig } from "../../services/config/generate.ts";
import { freePort } from "./cluster.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** The domain every project made by newProject serves. */
export const HOST = "app.hoard.test";
const WAGI_WASM = new URL("../fixtures/wagi/hello.wasm", import.meta.url).pathname;

export interface HoardNode {
  ip: string;
  root: string;
  peer: string;
  httpPort: number;
  url: string;
  running(): boolean;
  output(): string;
  start(): Promise<void>;
  kill9(): Promise<void>;
  signal(sig: Deno.Signal): void;
  stop(): Promise<void>;
  api<T>(path: string): Promise<T>;
  get(host: string, path: string): Promise<HostResponse>;
}

export interface HoardCluster {
  dir: string;
  nodes: HoardNode[];
  stop(): Promise<void>;
}

/** `hoarder` is the shape config's hoarder map (e.g. { copies: 3, grace: "3s" }), written into every node's YAML. */
export async function startHoardCluster(opts: {
  ips: string[];
  hoarder?: Record<string, string | number>;
  services?: string;
}): Promise<HoardCluster> {
  await ensureInstalled();
  const dir = await Deno.makeTempDir({ prefix: "tau-hoard-" });
  // What `tau config generate` runs (in-process: a CLI child per node costs seconds on a busy machine).
  const generate = async (ip: string, i: number, first?: { key: string; addr: string }) => {
    const root = join(dir, `n${i + 1}`);
    const g = await generateShapeConfig({
      root,
      cloud: "hoard.test",
      shape: "node",
      ip,
      services: opts.services ?? "all",
      http: await freePort(ip),
      p2p: await freePort(ip),
      dns: await freePort(ip, true),
      bootstrap: first ? [first.addr] : [],
      swarmKeyFile: first?.key,
      newSwarmKey: !first,
    });
    if (opts.hoarder) {
      const lines = Object.entries(opts.hoarder).map(([k, v]) => `  ${k}: ${v}`).join("\n");
      await Deno.writeTextFile(g.file, `hoarder:\n${lines}\n`, { append: true });
    }
    return { root, addr: g.multiaddr, ip };
  };
  const first = await generate(opts.ips[0], 0);
  const rest = await Promise.all(
    opts.ips.slice(1).map((ip, i) =>
      generate(ip, i + 1, { key: join(first.root, "keys/swarm.key"), addr: first.addr })
    ),
  );
  const nodes = [first, ...rest].map((g) => makeNode(g.root, g.ip, g.addr));
  const cluster: HoardCluster = {
    dir,
    nodes,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await waitUntil("every node sees every other alive", 30_000, async () => {
      for (const n of nodes) {
        const seen = await n.api<{ peer: string; alive: boolean }[]>("/api/nodes");
        if (nodes.some((m) => !seen.find((e) => e.peer === m.peer && e.alive))) return false;
      }
      return true;
    });
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

function makeNode(root: string, ip: string, addr: string): HoardNode {
  const peer = addr.split("/p2p/")[1];
  const yaml = Deno.readTextFileSync(join(root, "config/node.yaml"));
  const httpPort = Number(yaml.match(/^\s+http: (\d+)$/m)![1]);
  let child: Deno.ChildProcess | undefined;
  let exited: Promise<Deno.CommandStatus> | undefined;
  let out = "";
  const node: HoardNode = {
    ip,
    root,
    peer,
    httpPort,
    url: `http://${ip}:${httpPort}`,
    running: () => child !== undefined,
    output: () => out,
    async start() {
      const proc = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "serve", "--root", root, "--shape", "node"],
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      child = proc;
      exited = proc.status;
      const dec = new TextDecoder();
      let ready: () => void;
      const isReady = new Promise<void>((r) => (ready = r));
      const collect = async (s: ReadableStream<Uint8Array>) => {
        for await (const chunk of s) {
          out += dec.decode(chunk);
          if (out.includes(" ready: gateway ")) ready();
        }
      };
      collect(proc.stdout).catch(() => {});
      collect(proc.stderr).catch(() => {});
      await Promise.race([
        isReady,
        exited.then((s) => Promise.reject(new Error(`node ${ip} exited (${s.code}) before it was ready:\n${out}`))),
      ]);
    },
    async kill9() {
      if (!child) return;
      child.kill("SIGKILL");
      await exited;
      child = undefined;
    },
    signal(sig) {
      child?.kill(sig);
    },
    async stop() {
      if (!child) return;
      const proc = child;
      try {
        proc.kill("SIGCONT");
        proc.kill("SIGTERM");
      } catch { /* gone */ }
      // A node that cannot shut down within 10 s is a bug the test should not hang on.
      const timer = setTimeout(() => {
        try {
          proc.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await exited;
      clearTimeout(timer);
      child = undefined;
    },
    async api<T>(path: string): Promise<T> {
      const res = await fetch(`${node.url}${path}`, { signal: AbortSignal.timeout(10_000) });
      const body = await res.text();
      if (!res.ok) throw new Error(`${node.url}${path}: ${res.status} ${body}`);
      return JSON.parse(body) as T;
    },
    get: (host, path) => hostRequest(httpPort, host, path, { address: ip }),
  };
  return node;
}

/** Poll `check` every 250 ms until it is true; fail naming `what` after `ms`. Errors count as "not yet". */
export async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${ms} ms waiting until ${what}${last ? ` (last error: ${last})` : ""}`);
}

/** A project with a domain, a prebuilt (WAGI) function at /hi and a website at /, made with the CLI. */
export async function newProject(node: HoardNode, work: string, name: string) {
  const r = await tau(["new", "project", name, "--cloud", node.url], { cwd: work });
  assertEquals(r.code, 0, r.stderr);
  const dir = join(work, name);
  for (
    const args of [
      ["new", "domain", "app", "--fqdn", HOST],
      ["new", "function", "hi", "--domains", "app", "--paths", "/hi", "--template", "wasm"],
      ["new", "website", "site", "--domains", "app", "--paths", "/"],
    ]
  ) {
    const made = await tau(args, { cwd: dir });
    assertEquals(made.code, 0, made.stderr);
  }
  await Deno.copyFile(WAGI_WASM, join(dir, "code/functions/hi/hi.wasm"));
  return { dir, config: join(dir, "config"), code: join(dir, "code") };
}
