/** Image import (root: whiteouts are device nodes): OCI layout dir and tar, docker save, whiteouts, dedup. */
import { assert, assertEquals, assertMatch, assertRejects, assertStringIncludes } from "../helpers/assert.ts";
import { tau } from "../helpers/cloud.ts";
import { ContainerRuntime } from "../../runtime/container/runtime.ts";
import { e2e, finalCleanup } from "./harness.ts";
import { busyboxLayer, tar, writeDockerSave, writeOciLayout } from "./fixture.ts";
import { importImage } from "../../runtime/container/images/import.ts";
import { parseStatefile } from "../../runtime/container/statefile.ts";

Deno.test(e2e("image: layers with whiteouts and opaque dirs hide lower files", async ({ rt, tmp }) => {
  const top = tar([
    { name: "www", type: "dir" },
    { name: "www/.wh.index.html" },
    { name: "etc", type: "dir" },
    { name: "etc/.wh..wh..opq" },
    { name: "etc/motd", data: "new etc\n" },
  ]);
  await writeOciLayout(`${tmp}/layered`, { layers: [await busyboxLayer(), top] }, "layered:v2");
  const [img] = await importImage(rt.images, `${tmp}/layered`, rt.helper);
  assertEquals(img.refs, ["layered:v2"]);
  assertEquals(img.layers.length, 2);
  const [c] = await rt.run(parseStatefile(`container: layered:v2\ncommand: ["sleep", "600"]\n`));
  const r = await rt.execInContainer(c.id, ["sh", "-c", "ls /www; ls /etc"], true);
  assertEquals(r.stdout, "motd\n", "index.html whited out, /etc replaced by the opaque dir");
}));

Deno.test(e2e("image: docker save archives and OCI tars import; layers are shared", async ({ rt, tmp }) => {
  const base = await busyboxLayer();
  await writeDockerSave(`${tmp}/saved.tar`, { layers: [base], cmd: ["echo", "from docker save"] }, "saved:1");
  const [saved] = await importImage(rt.images, `${tmp}/saved.tar`, rt.helper);
  assertEquals(saved.refs, ["saved:1"]);
  const layerDirs = async () => {
    const out = [];
    for await (const e of Deno.readDir(rt.images.layersDir)) if (e.isDirectory) out.push(e.name);
    return out.sort();
  };
  const before = await layerDirs();
  const [c] = await rt.run(parseStatefile(`container: saved:1\n`));
  const rec = await rt.waitContainer(c.id, 10_000);
  assertEquals(rec.exitCode, 0);
  assertEquals(await rt.lastLogLines(c.id), ["from docker save"]);
  // the same base layer imported again under another name is not extracted twice
  await writeOciLayout(`${tmp}/again`, { layers: [base] }, "again:1");
  const tarred = await new Deno.Command("tar", { args: ["-C", `${tmp}/again`, "-cf", `${tmp}/again.tar`, "."] })
    .output();
  assertEquals(tarred.success, true);
  await importImage(rt.images, `${tmp}/again.tar`, rt.helper, { tag: "renamed:2" });
  assertEquals(await layerDirs(), before);
  assertEquals((await rt.images.resolve("renamed:2")).layers, saved.layers);
  await assertRejects(() => importImage(rt.images, `${tmp}/nothing`, rt.helper), /does not exist/);
}));

Deno.test(e2e("image: zstd-compressed layers (OCI +zstd) import and run", async ({ rt, tmp }) => {
  const extra = tar([{ name: "z.txt", data: "zstd layer\n" }]);
  await writeOciLayout(`${tmp}/zstd`, { layers: [await busyboxLayer(), extra], compression: "zstd" }, "zstd:1");
  const manifest = JSON.parse(await Deno.readTextFile(`${tmp}/zstd/index.json`)).manifests[0].digest.slice(7);
  const layers = JSON.parse(await Deno.readTextFile(`${tmp}/zstd/blobs/sha256/${manifest}`)).layers;
  assertEquals(layers[1].mediaType, "application/vnd.oci.image.layer.v1.tar+zstd");
  const [img] = await importImage(rt.images, `${tmp}/zstd`, rt.helper);
  const [c] = await rt.run(parseStatefile(`container: zstd:1\ncommand: ["cat", "/z.txt"]\n`));
  assertEquals((await rt.waitContainer(c.id, 10_000)).exitCode, 0);
  assertEquals(await rt.lastLogLines(c.id), ["zstd layer"]);
  assertEquals(img.layers.length, 2);
}));

Deno.test(e2e("image: a full disk fails an import clearly and keeps the images already stored", async ({ tmp }) => {
  // Its own small data dir (a 16 MB tmpfs): the helper binary and busybox fit, a 24 MB layer does not.
  const data = `${tmp}/small`;
  await Deno.mkdir(data);
  const mount = await new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", "size=16m", "tau-test-images", data] })
    .output();
  assert(mount.success, "mount a small tmpfs");
  try {
    await writeOciLayout(`${tmp}/small-oci`, { layers: [await busyboxLayer()] }, "busybox:latest");
    const ok = await tau(["image", "import", `${tmp}/small-oci`, "--data", data]);
    assertEquals(ok.code, 0, ok.stderr);
    const noise = new Uint8Array(24 << 20);
    for (let i = 0; i < noise.length; i += 65536) crypto.getRandomValues(noise.subarray(i, i + 65536));
    await writeOciLayout(`${tmp}/big-oci`, { layers: [tar([{ name: "noise.bin", data: noise }])] }, "big:1");
    const full = await tau(["image", "import", `${tmp}/big-oci`, "--data", data]);
    assertEquals(full.code, 1);
    const [error, hint] = full.stderr.trim().split("\n");
    assertMatch(error, /^error: disk full while storing image layer [0-9a-f]{12} in .*\/layers$/);
    assertEquals(hint.trim(), "hint: free disk space, then import again");
    const ls = await tau(["image", "ls", "--data", data]);
    assertStringIncludes(ls.stdout, "busybox:latest");
    assert(!ls.stdout.includes("big:1"), "the half-imported image is not listed");
    const rt = await ContainerRuntime.open(data);
    const [c] = await rt.run(parseStatefile(`container: busybox\ncommand: ["echo", "still here"]\n`));
    assertEquals((await rt.waitContainer(c.id, 10_000)).exitCode, 0);
    assertEquals(await rt.lastLogLines(c.id), ["still here"]);
    await rt.removeContainer(c.id);
    await Deno.remove(rt.runRoot, { recursive: true });
  } finally {
    await new Deno.Command("umount", { args: [data] }).output();
  }
}));

Deno.test(finalCleanup());
