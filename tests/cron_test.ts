// Cron triggers through a deployed project: a function on `@every 1s` writes one database key per run (its tick and a
// random id, so a tick run twice shows as two keys), and an HTTP function lists them. On one node (tau dev): every
// tick runs once; a node that was down does not replay the ticks it missed, unless the function has `catchup: true`;
// an invalid schedule fails `tau validate` and the push's build, naming the file and line. On a 3-node cloud
// (127.0.0.121-.123): each tick runs exactly once in the cloud, whichever nodes could run it; and a project secret set
// through one node is read by a function on every node.
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import {
  type Cloud,
  commitAndPush,
  hostRequest,
  MAIN,
  NODE_MODULES_MANUAL,
  startCloud,
  tau,
  waitForBuild,
} from "./helpers/cloud.ts";
import { eventually, startTestCloud } from "./helpers/cluster.ts";

const HOST = "cron.localtau";

/** A cron function that records each run under `prefix`<tick>/<random id>. */
const TICK = (call: string, prefix: string) =>
  `import { Database, randomBytes, Request, Response } from "tau-sdk";

export function ${call}(): void {
  const at = new Request().header("x-tau-tick");
  const r = randomBytes(4);
  const id = r[0].toString() + "." + r[1].toString() + "." + r[2].toString() + "." + r[3].toString();
  Database.open("ticks").putString("${prefix}" + (at == null ? "none" : at!) + "/" + id, "1");
  new Response().status(200).send("ok");
}
`;
const COUNT = `import { Database, Request, Response } from "tau-sdk";

export function count(): void {
  new Response().status(200).send(Database.open("ticks").list(new Request().query).join("\\n"));
}
`;
const SECRET_FN = `import { Response, secret } from "tau-sdk";

export function token(): void {
  const v = secret("API_TOKEN");
  new Response().status(200).send(v == null ? "(unset)" : v);
}
`;
const cronYaml = (schedule: string, catchup = false) =>
  `description: records its ticks\nsource: .\ntrigger:\n  type: cron\n  schedule: "${schedule}"\n` +
  (catchup ? "  catchup: true\n" : "") + "execution:\n  timeout: 5s\n";

/** Runs per tick (ms since the epoch) among the keys listed under `prefix`. */
function runsPerTick(listing: string, prefix: string): Map<number, number> {
  const runs = new Map<number, number>();
  for (const key of listing.split("\n").filter(Boolean)) {
    const tick = Date.parse(key.slice(prefix.length).split("/")[0]);
    runs.set(tick, (runs.get(tick) ?? 0) + 1);
  }
  return runs;
}

function assertOnce(runs: Map<number, number>, what: string) {
  const twice = [...runs].filter(([, n]) => n > 1).map(([t, n]) => `${new Date(t).toISOString()} x${n}`);
  assertEquals(twice, [], `${what}: ticks run more than once`);
}

/** A project with a database, the cron functions given, and `count`; built and live. Returns its folder. */
async function cronProject(url: string, work: string, crons: Record<string, { yaml: string; code: string }>) {
  const made = await tau(["new", "project", "ticker", "--cloud", url], { cwd: work });
  assertEquals(made.code, 0, made.stderr);
  const dir = join(work, "ticker");
  for (
    const args of [
      ["new", "domain", "web", "--fqdn", HOST],
      ["new", "function", "count", "--paths", "/count"],
      ["new", "database", "ticks", "--size", "1MB"],
    ]
  ) {
    const r = await tau(args, { cwd: dir });
    assertEquals(r.code, 0, r.stderr);
  }
  await Deno.writeTextFile(join(dir, "code/functions/count/index.ts"), COUNT);
  for (const [name, { yaml, code }] of Object.entries(crons)) {
    await Deno.writeTextFile(join(dir, `config/functions/${name}.yaml`), yaml);
    await Deno.mkdir(join(dir, `code/functions/${name}`), { recursive: true });
    await Deno.writeTextFile(join(dir, `code/functions/${name}/index.ts`), code);
  }
  await waitForBuild(url, "ticker", await commitAndPush(join(dir, "code"), "code"));
  const job = await waitForBuild(url, "ticker", await commitAndPush(join(dir, "config"), "config"));
  assertEquals(job.status, "success", job.error);
  return dir;
}

Deno.test("cron on one node: each tick once, no replay after downtime unless catchup, bad schedules fail the build", async () => {
  const work = await Deno.makeTempDir({ prefix: "tau-cron-" });
  const data = join(work, "data");
  let cloud: Cloud = await startCloud(data);
  const list = async (prefix: string) =>
    runsPerTick((await hostRequest(cloud.port, HOST, `/count?${prefix}`)).text, prefix);
  try {
    const dir = await cronProject(cloud.url, work, {
      tick: { yaml: cronYaml("@every 1s"), code: TICK("tick", "tick/") },
      late: { yaml: cronYaml("@every 1s", true), code: TICK("late", "late/") },
      boom: { yaml: cronYaml("@every 1s"), code: 'export function boom(): void { throw new Error("boom"); }\n' },
    });
    const first = await eventually(async () => {
      const runs = await list("tick/");
      return runs.size >= 4 ? runs : undefined;
    }, "four ticks run");
    assertOnce(first, "before the restart");
    // A tick that fails is a line in the function's log (here the terminal of tau dev).
    await eventually(
      () => Promise.resolve(/\[fn boom \S+\] log: cron tick \S+ failed \(trap\)/.test(cloud.output())),
      "the failed tick in the function log",
    );

    // A bad schedule: tau validate and the push's build both name the file and line; what is live keeps running.
    await Deno.writeTextFile(join(dir, "config/functions/tick.yaml"), cronYaml("61 * * * *"));
    const v = await tau(["validate"], { cwd: dir });
    assertEquals(v.code, 1, v.stdout);
    assertStringIncludes(v.stderr, "functions/tick.yaml:5: trigger.schedule '61 * * * *': the minute field '61'");
    const job = await waitForBuild(cloud.url, "ticker", await commitAndPush(join(dir, "config"), "bad schedule"));
    assertEquals(job.status, "failed");
    assertStringIncludes(job.error, "functions/tick.yaml:5: trigger.schedule '61 * * * *'");
    const before = (await list("tick/")).size;
    await eventually(async () => (await list("tick/")).size > before, "ticks go on after the failed build");
    // (The restart below gives the node another port: the repos' remotes point at this one.)

    // Down for a while: the ticks of that time are gone for `tick`, run after the restart for `late` (catchup).
    await cloud.stop();
    const stoppedAt = Date.now();
    await new Promise((r) => setTimeout(r, 4_000));
    const restartedAt = Date.now();
    cloud = await startCloud(data);
    const after = await eventually(async () => {
      const [tick, late] = [await list("tick/"), await list("late/")];
      const newer = (runs: Map<number, number>) => [...runs.keys()].some((t) => t > restartedAt);
      return newer(tick) && newer(late) ? { tick, late } : undefined;
    }, "ticks after the restart");
    assertOnce(after.tick, "tick");
    assertOnce(after.late, "late");
    const down: number[] = [];
    for (let t = Math.ceil((stoppedAt + 1000) / 1000) * 1000; t < restartedAt; t += 1000) down.push(t);
    assert(down.length >= 2, "the node was down for some ticks");
    assertEquals(down.filter((t) => after.tick.has(t)), [], "no catchup: the ticks missed while down are not run");
    assertEquals(down.filter((t) => !after.late.has(t)), [], "catchup: every tick missed while down ran later");
    assertStringIncludes(cloud.output(), "cron: ticker/late: catching up");
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true });
  }
});

Deno.test({
  name: "cron on a 3-node cloud: every tick runs exactly once in the cloud; a secret is read on every node",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const cluster = await startTestCloud([
      { shape: "all", ip: "127.0.0.121" },
      { shape: "all", ip: "127.0.0.122" },
      { shape: "all", ip: "127.0.0.123" },
    ], { cloud: "cron.test" });
    const work = await Deno.makeTempDir({ prefix: "tau-cron-cloud-" });
    try {
      await cluster.waitMesh();
      const [n1] = cluster.nodes;
      // A secret set through one node is read on every node (the key derives from the cloud's swarm key).
      const value = `tok-${crypto.randomUUID()}`;
      const dir = await cronProject(n1.url, work, {
        tick: { yaml: cronYaml("@every 1s"), code: TICK("tick", "tick/") },
      });
      const setSecret = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", NODE_MODULES_MANUAL, MAIN, "secret", "set", "ticker", "API_TOKEN", "--cloud", n1.url],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = setSecret.stdin.getWriter();
      await w.write(new TextEncoder().encode(value));
      await w.close();
      const set = await setSecret.output();
      assertEquals(set.code, 0, new TextDecoder().decode(set.stderr));
      const r = await tau(["new", "function", "token", "--paths", "/token"], { cwd: dir });
      assertEquals(r.code, 0, r.stderr);
      const yaml = join(dir, "config/functions/token.yaml");
      await Deno.writeTextFile(yaml, `${await Deno.readTextFile(yaml)}secrets: [API_TOKEN]\n`);
      await Deno.writeTextFile(join(dir, "code/functions/token/index.ts"), SECRET_FN);
      await waitForBuild(n1.url, "ticker", await commitAndPush(join(dir, "code"), "token code"));
      const job = await waitForBuild(n1.url, "ticker", await commitAndPush(join(dir, "config"), "token"));
      assertEquals(job.status, "success", job.error);
      for (const n of cluster.nodes) {
        const got = await eventually(async () => {
          const res = await hostRequest(n.ports.http, HOST, "/token", {}, n.spec.ip);
          return res.status === 200 && res.text !== "(unset)" ? res.text : undefined;
        }, `the secret read on ${n.spec.ip}`);
        assertEquals(got, value, n.spec.ip);
      }

      const list = async (i: number) => {
        const n = cluster.nodes[i];
        return runsPerTick((await hostRequest(n.ports.http, HOST, "/count?tick/", {}, n.spec.ip)).text, "tick/");
      };
      const seen = await eventually(
        async () => {
          const runs = await list(0);
          return runs.size >= 6 ? runs : undefined;
        },
        "six ticks run",
        60_000,
      );
      assertOnce(seen, "node 1's view");
      // Every node's view of the replicated database has each tick once.
      for (let i = 0; i < 3; i++) assertOnce(await list(i), `node ${i + 1}'s view`);
    } catch (err) {
      console.error(cluster.logs().slice(-6000));
      throw err;
    } finally {
      await cluster.stop();
      await Deno.remove(work, { recursive: true });
    }
  },
});
