/**
 * P2P commands through the user's entry points: a project pushed with git declares a service (protocol /hello/v1)
 * and functions triggered by its commands; `tau call` and an HTTP function (tau's AssemblyScript SDK over Taubyte's
 * p2p calls) send commands and get the answers; a Taubyte-ABI guest reads the command with the p2p event calls.
 * Bad inputs: an unknown protocol or command, data over the bound, a peer on a node that has none, a function that
 * traps (the node keeps serving). The multi-node half (127.0.0.111-.113: two full nodes and an edge without
 * substrate) is at the end of the file.
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { commitAndPush, hostRequest, startCloud, tau, tauWithStdin, waitForBuild } from "./helpers/cloud.ts";
import { ASK, CRASH, GREET, NEAR, parseTaubyteAnswer, SPIN, TAUBYTE_P2P_GUEST } from "./fixtures/p2p_guests.ts";
import { cidToPeer } from "../runtime/wasm/taubyte/peer_cid.ts";
import { eventually, startTestCloud } from "./helpers/cluster.ts";
import { startP2p } from "../services/p2p/node.ts";
import { newIdentity, parseSwarmKey } from "../services/p2p/keys.ts";
import { RpcClient } from "../services/p2p/rpc.ts";
import type { TauError } from "../runtime/errors.ts";

const HOST = "cmds.localtau";

/** A p2p function's config: trigger {type: p2p, <protocol or service>, command}, calling `call`. */
function p2pFunction(name: string, target: string, command: string, local = false, timeout = "10s"): string {
  const key = target.startsWith("/") ? "protocol" : "service";
  return `description: p2p ${command}\ntags: []\nsource: .\ntrigger:\n  type: p2p\n  ${key}: ${target}\n  command: ${command}\n` +
    `  local: ${local}\nexecution:\n  timeout: ${timeout}\n  memory: 16MB\n  call: ${name}\n`;
}

/** The project `cmds`: service hello (/hello/v1), p2p functions greet, crash, near (local), tb (Taubyte), HTTP ask. */
export async function cmdsProject(cloudUrl: string, work: string): Promise<string> {
  const made = await tau(["new", "project", "cmds", "--cloud", cloudUrl], { cwd: work });
  if (made.code !== 0) throw new Error(made.stderr);
  const dir = join(work, "cmds");
  for (
    const args of [
      ["new", "domain", "web", "--fqdn", HOST],
      ["new", "function", "ask", "--paths", "/ask", "--method", "POST"],
    ]
  ) {
    const r = await tau(args, { cwd: dir });
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const config = join(dir, "config");
  const code = join(dir, "code");
  await Deno.mkdir(join(config, "services"), { recursive: true });
  await Deno.writeTextFile(
    join(config, "services/hello.yaml"),
    "description: greetings\ntags: []\nprotocol: /hello/v1\n",
  );
  // greet names the service (Taubyte's `service:`), the others the protocol itself.
  await Deno.writeTextFile(join(config, "functions/greet.yaml"), p2pFunction("greet", "hello", "greet"));
  await Deno.writeTextFile(join(config, "functions/crash.yaml"), p2pFunction("crash", "/hello/v1", "crash"));
  await Deno.writeTextFile(join(config, "functions/near.yaml"), p2pFunction("near", "/hello/v1", "near", true));
  await Deno.writeTextFile(join(config, "functions/tb.yaml"), p2pFunction("tb", "/hello/v1", "event"));
  await Deno.writeTextFile(join(config, "functions/spin.yaml"), p2pFunction("spin", "/hello/v1", "spin", false, "1s"));
  for (const [name, source] of [["greet", GREET], ["crash", CRASH], ["near", NEAR], ["spin", SPIN]]) {
    await Deno.mkdir(join(code, "functions", name), { recursive: true });
    await Deno.writeTextFile(join(code, "functions", name, "index.ts"), source);
  }
  await Deno.writeTextFile(join(code, "functions/ask/index.ts"), ASK);
  await Deno.mkdir(join(code, "functions/tb"), { recursive: true });
  await Deno.writeFile(join(code, "functions/tb/tb.wasm"), TAUBYTE_P2P_GUEST);
  await waitForBuild(cloudUrl, "cmds", await commitAndPush(code, "p2p functions"));
  const job = await waitForBuild(cloudUrl, "cmds", await commitAndPush(config, "service hello and its functions"));
  if (job.status !== "success") throw new Error(`cmds did not build: ${job.error}`);
  return dir;
}

Deno.test("p2p commands on one node: tau call, a function that sends one, Taubyte's event calls, bad inputs", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-p2p-" });
  const cloud = await startCloud(join(work, "data"));
  const call = (args: string[]) => tau(["call", ...args, "--cloud", cloud.url]);
  const ask = (query: string, body = "") => hostRequest(cloud.port, HOST, `/ask?${query}`, { method: "POST", body });
  try {
    await cmdsProject(cloud.url, work);

    // tau call: the answer's bytes on stdout, nothing else; tau dev is one node, "local".
    const greet = await call(["cmds", "/hello/v1", "greet", "--data", "ada"]);
    assertEquals(greet.code, 0, greet.stderr);
    assertEquals(greet.stdout, "hello ada via /hello/v1 greet from local to local");
    const piped = await tauWithStdin(
      ["call", "cmds", "/hello/v1", "greet", "--data", "-", "--cloud", cloud.url],
      new TextEncoder().encode("stdin"),
    );
    assertEquals([piped.code, piped.stdout], [0, "hello stdin via /hello/v1 greet from local to local"], piped.stderr);
    const near = await call(["cmds", "/hello/v1", "near"]);
    assertEquals([near.code, near.stdout], [0, "near"], "local: true answers a command sent from its own node");

    // An HTTP function sends a command and answers with its answer.
    const asked = await ask("p=/hello/v1&c=greet", "bob");
    assertEquals([asked.status, asked.text], [200, "hello bob via /hello/v1 greet from local to local"]);
    assertEquals((await ask("op=listen&p=/hello/v1")).text, "/cmds/hello/v1");
    assertEquals((await ask("op=discover")).text, "", "tau dev has no other node");

    // Taubyte's p2p event calls: command, protocol, data, and the peers as CIDs.
    const tb = await tau(["call", "cmds", "/hello/v1", "event", "--data", "xyz", "--cloud", cloud.url]);
    assertEquals(tb.code, 0, tb.stderr);
    const viaApi = await fetch(`${cloud.url}/api/projects/cmds/commands?protocol=/hello/v1&command=event`, {
      method: "POST",
      body: "xyz",
    });
    const parsed = parseTaubyteAnswer(new Uint8Array(await viaApi.arrayBuffer()));
    assertEquals(parsed.fields, ["event", "/hello/v1", "xyz"]);
    assertEquals([cidToPeer(parsed.to), cidToPeer(parsed.from)], ["local", "local"]);

    // A protocol nobody serves, a command nobody answers: one clear line each, the exit code non-zero.
    const nobody = await call(["cmds", "/nobody/v1", "ping"]);
    assertEquals(nobody.code, 1);
    assertEquals(nobody.stdout, "");
    const lines = nobody.stderr.trim().split("\n");
    assertEquals(lines[0], "error: no function of project cmds answers command ping on protocol /nobody/v1");
    assertEquals(lines[1], "  hint: its protocols are /hello/v1");
    const noCommand = await call(["cmds", "/hello/v1", "nope"]);
    assertEquals(noCommand.code, 1);
    assertStringIncludes(
      noCommand.stderr,
      "error: no function of project cmds answers command nope on protocol /hello/v1",
    );
    assertStringIncludes(noCommand.stderr, "hint: commands on /hello/v1: crash, event, greet, near, spin");
    const noProject = await call(["nope", "/hello/v1", "greet"]);
    assertStringIncludes(noProject.stderr, "error: project nope does not exist");
    const badProtocol = await call(["cmds", "hello", "greet"]);
    assertStringIncludes(badProtocol.stderr, `error: protocol 'hello' must start with "/"`);
    const peer = await call(["cmds", "/hello/v1", "greet", "--to", "12D3KooWAbc"]);
    assertStringIncludes(peer.stderr, "error: peer 12D3KooWAbc is not reachable: this node is not part of a cloud");

    // Data over the bound (4 MiB): refused before any function runs.
    const big = await tauWithStdin(
      ["call", "cmds", "/hello/v1", "greet", "--data", "-", "--cloud", cloud.url],
      new Uint8Array((4 << 20) + 1),
    );
    assertEquals(big.code, 1);
    assertStringIncludes(big.stderr, "error: command data of 4194305 bytes is over the 4194304 a command may carry");

    // From a guest: an errno (45: protocol not found, 44: command not found) and one log line naming why.
    const guestNobody = await ask("p=/nobody/v1&c=ping");
    assertEquals([guestNobody.status, guestNobody.text], [445, "errno 45"]);
    assertEquals((await ask("p=/hello/v1&c=nope")).status, 444);
    assert(
      /\[fn ask [^\]]+\] stderr: host: p2p: no function of project cmds answers command ping on protocol \/nobody\/v1/
        .test(cloud.output()),
      cloud.output(),
    );

    // A function that traps: the caller gets the runtime's reason; the node keeps answering.
    const crash = await call(["cmds", "/hello/v1", "crash"]);
    assertEquals(crash.code, 1);
    assertStringIncludes(
      crash.stderr,
      "error: function crash failed answering command crash on protocol /hello/v1 of project cmds: trap:",
    );
    assertEquals((await ask("p=/hello/v1&c=crash")).status, 443, "sendFailed (43) for a guest");
    const spin = await call(["cmds", "/hello/v1", "spin"]);
    assertEquals(spin.code, 1);
    assertStringIncludes(
      spin.stderr,
      "error: function spin failed answering command spin on protocol /hello/v1 of project cmds: timeout:",
    );
    const after = await call(["cmds", "/hello/v1", "greet", "--data", "again"]);
    assertEquals([after.code, after.stdout], [0, "hello again via /hello/v1 greet from local to local"]);
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
});

Deno.test({
  name:
    "p2p commands across nodes: answered on the peer named, routed from a node without substrate, refused, failed over",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const cluster = await startTestCloud([
      { shape: "all", ip: "127.0.0.111" },
      { shape: "all", ip: "127.0.0.112" },
      { shape: "edge", ip: "127.0.0.113", services: "gateway" },
    ], { cloud: "commands.test" });
    const [a, b, edge] = cluster.nodes;
    const work = await Deno.makeTempDir({ prefix: "tau-p2p-multi-" });
    const call = (node: typeof a, args: string[]) => tau(["call", ...args, "--cloud", node.url]);
    const greeting = (data: string, from: string, to: string) =>
      `hello ${data} via /hello/v1 greet from ${from} to ${to}`;
    try {
      await cluster.waitMesh();
      await cmdsProject(a.url, work);

      // Node A sends to node B by peer id (tau call --to, and a guest's sendCommandTo): B's function answers.
      const toB = await eventually(async () => {
        const r = await call(a, ["cmds", "/hello/v1", "greet", "--data", "x", "--to", b.peerId]);
        return r.code === 0 ? r : undefined;
      }, "a command from A answered on B");
      assertEquals(toB.stdout, greeting("x", a.peerId, b.peerId));
      const asked = await eventually(async () => {
        const r = await hostRequest(a.ports.http, HOST, `/ask?p=/hello/v1&c=greet&to=${b.peerId}`, {
          method: "POST",
          body: "y",
        }, a.spec.ip);
        return r.status === 200 ? r : undefined;
      }, "ask on A answered");
      assertEquals(asked.text, greeting("y", a.peerId, b.peerId));
      // Taubyte's event calls on B see B as To and A as From.
      const tb = await fetch(
        `${a.url}/api/projects/cmds/commands?protocol=/hello/v1&command=event&to=${b.peerId}`,
        { method: "POST", body: "z" },
      );
      const parsed = parseTaubyteAnswer(new Uint8Array(await tb.arrayBuffer()));
      assertEquals([parsed.fields[2], cidToPeer(parsed.to), cidToPeer(parsed.from)], ["z", b.peerId, a.peerId]);
      // discoverPeers from a guest on A lists B (and never A itself, nor the edge: it runs no functions).
      const discovered = await hostRequest(a.ports.http, HOST, "/ask?op=discover", { method: "POST" }, a.spec.ip);
      assertEquals(discovered.text, b.peerId);

      // The edge runs no functions: its command goes to a substrate node, which answers.
      const viaEdge = await eventually(async () => {
        const r = await call(edge, ["cmds", "/hello/v1", "greet", "--data", "e"]);
        return r.code === 0 ? r : undefined;
      }, "a command sent on the edge answered");
      assert(
        [greeting("e", edge.peerId, a.peerId), greeting("e", edge.peerId, b.peerId)].includes(viaEdge.stdout),
        viaEdge.stdout,
      );

      // local: true answers only commands sent from its own node.
      const near = await call(a, ["cmds", "/hello/v1", "near", "--to", b.peerId]);
      assertEquals(near.code, 1);
      assertStringIncludes(
        near.stderr,
        "error: function near answers command near on protocol /hello/v1 of project cmds only when sent from its own node (trigger local: true)",
      );
      assertEquals((await call(edge, ["cmds", "/hello/v1", "near"])).code, 1);
      assertEquals((await call(b, ["cmds", "/hello/v1", "near"])).stdout, "near", "sent on B, answered on B");
      // B enforces local: true and names the sender itself: a swarm member that skips the sender's checks (a raw
      // RPC call on /tau/command/1.0.0) is refused, and `from` is the peer noise authenticated.
      const stranger = await startP2p({
        identity: await newIdentity(),
        listen: ["/ip4/127.0.0.113/tcp/0"],
        bootstrap: [],
        localAddress: "127.0.0.113",
        swarmKey: parseSwarmKey(await Deno.readTextFile(join(a.root, "keys/swarm.key")), "swarm.key"),
      });
      try {
        assert(await stranger.connect([b.multiaddr]), "the stranger reaches B");
        const rpc = new RpcClient(stranger.libp2p);
        const raw = (command: string) =>
          rpc.call(b.peerId, "command", "send", {
            project: "cmds",
            protocol: "/hello/v1",
            command,
            data: new Uint8Array([33]),
          });
        const refused = await raw("near").then(() => undefined, (err) => err as TauError);
        assertEquals(refused?.status, 403);
        assertStringIncludes(
          refused!.message,
          `only when sent from its own node (trigger local: true); this one came from peer ${stranger.peerId}`,
        );
        const answered = (await raw("greet")).result as { answer: Uint8Array };
        assertEquals(new TextDecoder().decode(answered.answer), greeting("!", stranger.peerId, b.peerId));
      } finally {
        await stranger.stop();
      }

      // A function that traps on B: the runtime's reason crosses back.
      const crash = await call(a, ["cmds", "/hello/v1", "crash", "--to", b.peerId]);
      assertStringIncludes(
        crash.stderr,
        "error: function crash failed answering command crash on protocol /hello/v1 of project cmds: trap:",
      );
      // ...and B keeps answering, on the same pooled stream the failure came back on.
      const again = await call(a, ["cmds", "/hello/v1", "greet", "--data", "again", "--to", b.peerId]);
      assertEquals([again.code, again.stdout], [0, greeting("again", a.peerId, b.peerId)], again.stderr);

      // B is killed: a command to it is one clear line; commands from the edge fail over to A.
      await b.kill();
      const gone = await call(a, ["cmds", "/hello/v1", "greet", "--to", b.peerId]);
      assertEquals(gone.code, 1);
      assert(gone.stderr.startsWith(`error: peer ${b.peerId} is not reachable`), gone.stderr);
      for (let i = 0; i < 3; i++) {
        const r = await call(edge, ["cmds", "/hello/v1", "greet", "--data", `f${i}`]);
        assertEquals([r.code, r.stdout], [0, greeting(`f${i}`, edge.peerId, a.peerId)], r.stderr);
      }
    } catch (err) {
      console.error(cluster.logs());
      throw err;
    } finally {
      await cluster.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
