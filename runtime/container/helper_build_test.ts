// The helper is compiled from source in a checkout, and unpacked (not compiled) when a prebuilt one is embedded.
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { buildPrebuiltHelper, ensureHelper } from "./helper_build.ts";

const haveCc = await new Deno.Command("sh", { args: ["-c", "command -v ${CC:-cc}"], stdout: "null" }).output()
  .then((o) => o.success, () => false);

Deno.test({
  name: haveCc ? "helper: a prebuilt helper is unpacked executable, no compiler involved" : "helper (skipped: no cc)",
  ignore: !haveCc,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "tau-helper-" });
    const before = Deno.env.get("CC");
    try {
      const prebuilt = await buildPrebuiltHelper(`${tmp}/prebuilt`);
      // A compiler that cannot run: only unpacking can succeed now.
      Deno.env.set("CC", `${tmp}/no-such-compiler`);
      const unpacked = await ensureHelper(`${tmp}/data`, `${tmp}/prebuilt`);
      assertEquals(unpacked.replace(/^.*\//, ""), prebuilt.replace(/^.*\//, ""), "named by the same source hash");
      assertEquals(await Deno.readFile(unpacked), await Deno.readFile(prebuilt));
      assert(((await Deno.stat(unpacked)).mode! & 0o111) !== 0, "executable");
      const usage = await new Deno.Command(unpacked, { stderr: "piped" }).output();
      assertEquals(usage.code, 2, "the helper runs (and asks for a mode)");
    } finally {
      if (before === undefined) Deno.env.delete("CC");
      else Deno.env.set("CC", before);
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
