import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { DEFAULT_SETTINGS, readHoarderSettings } from "./settings.ts";

const files: string[] = [];
async function withYaml(text: string) {
  const file = await Deno.makeTempFile({ suffix: ".yaml" });
  files.push(file);
  await Deno.writeTextFile(file, text);
  return file;
}
const cleanUp = () => Promise.all(files.splice(0).map((f) => Deno.remove(f)));

Deno.test("hoarder settings: defaults, and the values a shape config sets", async () => {
  assertEquals(await readHoarderSettings(await withYaml("ip: 127.0.0.1\n")), DEFAULT_SETTINGS);
  const file = await withYaml(
    "ip: 127.0.0.1\nhoarder:\n  copies: 2\n  grace: 1m30s\n  keep: 0\n  publish-timeout: 5s\n",
  );
  assertEquals(await readHoarderSettings(file), { copies: 2, graceMs: 90_000, keep: 0, publishTimeoutMs: 5_000 });
  await cleanUp();
});

Deno.test("hoarder settings: each bad value is one error naming the file and line", async () => {
  const cases: [string, RegExp][] = [
    ["hoarder:\n  copies: 0\n", /:2: hoarder\.copies 0 must be a whole number >= 1/],
    ["hoarder:\n  keep: 1.5\n", /:2: hoarder\.keep 1\.5 must be a whole number >= 0/],
    ["ip: x\nhoarder:\n  grace: soon\n", /:3: hoarder\.grace: 'soon' is not a duration/],
    ["hoarder:\n  copys: 3\n", /:2: hoarder has no setting copys/],
    ["hoarder: 3\n", /:1: hoarder must be a map/],
  ];
  for (const [text, re] of cases) {
    const file = await withYaml(text);
    await assertRejects(() => readHoarderSettings(file), re);
  }
  await cleanUp();
});
