/**
 * The serving thread's watchdog. A prepared guest cannot hold the thread (metering_test.ts), so a stall is made
 * here the only way one can be: synchronous work on the watched thread between enter() and leave().
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { ServingWatchdog } from "./watchdog.ts";

function hold(ms: number) {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* the guest that does not come back */ }
}

Deno.test("watchdog: a Worker notices a guest call holding the serving thread", async () => {
  const dog = new ServingWatchdog({ stallMs: 200, exitAfterMs: null });
  try {
    const id = dog.guestId("module-1", "spin");
    await dog.ready;
    dog.enter(id);
    hold(800);
    dog.leave();
    assertEquals(dog.stalls, 1);
    dog.enter(id);
    dog.leave(); // a quick call is no stall
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(dog.stalls, 1);
  } finally {
    dog.close();
  }
});

Deno.test("watchdog: past exitAfterMs it records the module and kills the process", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tau-watchdog-" });
  try {
    const quarantine = join(dir, "quarantine");
    const script = join(dir, "stall.ts");
    await Deno.writeTextFile(
      script,
      `import { ServingWatchdog } from ${JSON.stringify(new URL("./watchdog.ts", import.meta.url).href)};
       const dog = new ServingWatchdog({ stallMs: 100, exitAfterMs: 400, quarantineFile: ${
        JSON.stringify(quarantine)
      } });
       const id = dog.guestId("module-stuck", "stuck");
       await dog.ready;
       dog.enter(id);
       const end = performance.now() + 20_000;
       while (performance.now() < end) {}
       console.log("came back");`,
    );
    const start = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const took = performance.now() - start;
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.signal, "SIGKILL", stderr);
    assertEquals(new TextDecoder().decode(out.stdout), "");
    assert(took < 15_000, `the stuck process lived ${took.toFixed(0)} ms`);
    assertStringIncludes(stderr, "tau watchdog: function stuck (module module-stuck) has held the serving thread");
    assertStringIncludes(stderr, "stopping the node so that it can be restarted");
    assertEquals(await Deno.readTextFile(quarantine), "module-stuck\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watchdog: its Worker starts when asked or with the first guest, not before", async () => {
  const idle = new ServingWatchdog({ exitAfterMs: null });
  const asked = new ServingWatchdog({ exitAfterMs: null });
  try {
    assertEquals(idle.started, false);
    idle.enter(0);
    idle.leave(); // the beat alone starts nothing
    assertEquals(idle.started, false);
    idle.guestId("module-1", "first");
    assertEquals(idle.started, true);
    await idle.ready;
    asked.watch();
    assertEquals(asked.started, true);
    await asked.ready;
  } finally {
    idle.close();
    asked.close();
  }
});
