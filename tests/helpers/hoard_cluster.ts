/**
 * The hoarder tests' view of a cloud from tests/helpers/cluster.ts: every node of one shape ("node") with the same
 * hoarder settings, addressed by peer id and by HTTP, with the calls those tests make (API, gateway, kill -9, pause).
 */
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { hostRequest, type HostResponse, tau } from "./cloud.ts";
import { startTestCloud, type TestNode } from "./cluster.ts";

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
  const appendYaml = opts.hoarder
    ? `hoarder:\n${Object.entries(opts.hoarder).map(([k, v]) => `  ${k}: ${v}\n`).join("")}`
    : undefined;
  const cloud = await startTestCloud(
    opts.ips.map((ip) => ({ shape: "node", ip, services: opts.services })),
    { cloud: "hoard.test", appendYaml },
  );
  try {
    await cloud.waitMesh();
  } catch (err) {
    await cloud.stop();
    throw err;
  }
  return { dir: cloud.dir, nodes: cloud.nodes.map(hoardNode), stop: () => cloud.stop() };
}

function hoardNode(n: TestNode): HoardNode {
  const node: HoardNode = {
    ip: n.spec.ip,
    root: n.root,
    peer: n.peerId,
    httpPort: n.ports.http,
    url: n.url,
    running: () => n.pid !== undefined,
    output: () => n.logs(),
    start: () => n.start(),
    kill9: () => n.kill(),
    signal: (sig) => n.signal(sig),
    stop: () => n.stop(),
    async api<T>(path: string): Promise<T> {
      const res = await fetch(`${n.url}${path}`, { signal: AbortSignal.timeout(10_000) });
      const body = await res.text();
      if (!res.ok) throw new Error(`${n.url}${path}: ${res.status} ${body}`);
      return JSON.parse(body) as T;
    },
    get: (host, path) => hostRequest(n.ports.http, host, path, { address: n.spec.ip }),
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
