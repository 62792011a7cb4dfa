/**
 * Remote access: a node's API and git answer another machine only with the cloud's admin token. "Another machine" is
 * a network namespace this test creates (a veth pair on a private /24 of its own): every 127.x peer counts as this
 * machine, so the client must come from an address that is not loopback.
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { ensureInstalled, MAIN } from "./helpers/cloud.ts";
import { startTestCloud } from "./helpers/cluster.ts";

const isRoot = Deno.uid() === 0;
const id = Deno.pid % 10000;
const NS = `tau-remote-${id}`;
const HOST_IF = `tauh${id}`, CLIENT_IF = `tauc${id}`;
const SUBNET = `10.99.${id % 250}`;
const NODE_IP = `${SUBNET}.1`, CLIENT_IP = `${SUBNET}.2`;

async function ip(...args: string[]) {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** The tau CLI run inside the client namespace, with its own HOME (credentials, git's global config). */
async function remoteTau(args: string[], home: string, opts: { cwd?: string } = {}) {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", NS, Deno.execPath(), "run", "-A", MAIN, ...args],
    cwd: opts.cwd,
    env: { HOME: home, GIT_TERMINAL_PROMPT: "0", TAU_HOME: join(home, ".tau") },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "remote access: the API and git answer another machine only with the admin token, which never reaches a log",
  ignore: !isRoot,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await ensureInstalled();
    const dir = await Deno.makeTempDir({ prefix: "tau-remote-" });
    const home = join(dir, "home");
    await Deno.mkdir(home);
    // The client's namespace exists (and is routed) before anything listens or connects.
    await ip("netns", "add", NS);
    try {
      await ip("link", "add", HOST_IF, "type", "veth", "peer", "name", CLIENT_IF);
      await ip("link", "set", CLIENT_IF, "netns", NS);
      await ip("addr", "add", `${NODE_IP}/24`, "dev", HOST_IF);
      await ip("link", "set", HOST_IF, "up");
      await ip("netns", "exec", NS, "ip", "addr", "add", `${CLIENT_IP}/24`, "dev", CLIENT_IF);
      await ip("netns", "exec", NS, "ip", "link", "set", CLIENT_IF, "up");
      await ip("netns", "exec", NS, "ip", "link", "set", "lo", "up");
      const cloud_ = await startTestCloud([{ shape: "all", ip: NODE_IP }], { dir: join(dir, "cloud") });
      const node = cloud_.nodes[0];
      const cloud = node.url;
      const token = (await Deno.readTextFile(join(node.root, "keys", "admin.token"))).trim();
      try {
        await t.step("without a token another machine is refused with a hint", async () => {
          const r = await remoteTau(["nodes", "--cloud", cloud], home);
          assertEquals(r.code, 1, r.stderr);
          assertStringIncludes(r.stderr, "needs the cloud's admin token");
          assertStringIncludes(r.stderr, "hint: tau login --cloud URL --token TOKEN");
        });
        await t.step("a wrong token is refused by tau login; nothing is stored", async () => {
          const r = await remoteTau(["login", "--cloud", cloud, "--token", "x".repeat(43)], home);
          assertEquals(r.code, 1);
          assertStringIncludes(r.stderr, "the token was not accepted");
          assert(!(await exists(join(home, ".tau", "credentials.json"))));
        });
        await t.step("after tau login the CLI and git reach the API and the repos", async () => {
          const login = await remoteTau(["login", "--cloud", cloud, "--token", token], home);
          assertEquals(login.code, 0, login.stderr);
          const nodes = await remoteTau(["nodes", "--cloud", cloud], home);
          assertEquals(nodes.code, 0, nodes.stderr);
          assertStringIncludes(nodes.stdout, node.peerId);
          const created = await remoteTau(["new", "project", "remote", "--cloud", cloud], home, { cwd: home });
          assertEquals(created.code, 0, created.stderr);
          assert(await exists(join(home, "remote", "config", "config.yaml")), "git cloned through the helper");
          const mode = (await Deno.stat(join(home, ".tau", "credentials.json"))).mode! & 0o777;
          assertEquals(mode, 0o600);
        });
        await t.step("the token appears in no log and no repo config", async () => {
          assert(!node.logs().includes(token), "the node's output does not contain the token");
          const gitConfig = await Deno.readTextFile(join(home, "remote", "config", ".git", "config"));
          assert(!gitConfig.includes(token), "the clone's remote URL carries no token");
        });
      } finally {
        await cloud_.stop();
      }
    } finally {
      await new Deno.Command("ip", { args: ["link", "del", HOST_IF], stderr: "null" }).output();
      await new Deno.Command("ip", { args: ["netns", "del", NS], stderr: "null" }).output();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
