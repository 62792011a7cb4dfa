/** Freed allocator memory goes back to the OS once the process is quiet after work (Linux with glibc). */
import { assert } from "../tests/helpers/assert.ts";
import { cpuMs } from "./idle_trim.ts";

const glibc = Deno.build.os === "linux" && (() => {
  try {
    Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } }).close();
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: glibc ? "idle trim: once quiet after work, freed memory is given back" : "idle trim (SKIPPED: not glibc)",
  ignore: !glibc,
  fn: async () => {
    // In a process of its own: `deno test --parallel` runs every test file in this one, which is never quiet.
    const script = `
      import { startIdleTrim } from ${JSON.stringify(new URL("./idle_trim.ts", import.meta.url).href)};
      const trim = startIdleTrim(100);
      // Work: allocate and free (the start counts as work too), then stay quiet.
      if (Array.from({ length: 200 }, () => new Uint8Array(64 * 1024).fill(1)).length !== 200) Deno.exit(3);
      for (let i = 0; i < 100 && trim.trims === 0; i++) await new Promise((r) => setTimeout(r, 100));
      trim.stop();
      console.log(trim.trims);
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--node-modules-dir=manual", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const trims = Number(new TextDecoder().decode(out.stdout).trim());
    assert(out.success && trims >= 1, `no trim after the process went quiet: ${new TextDecoder().decode(out.stderr)}`);
  },
});

Deno.test("idle trim: this process's CPU time is read from /proc", () => {
  if (Deno.build.os !== "linux") return;
  const before = cpuMs()!;
  let x = 0;
  const end = performance.now() + 50;
  while (performance.now() < end) x++;
  assert(x > 0 && cpuMs()! >= before, `cpu went from ${before} to ${cpuMs()}`);
});
