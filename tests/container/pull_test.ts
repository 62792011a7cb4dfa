/** Registry pull (root for the store's helper): token flow, index by platform, digest checks, then run the image. */
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { e2e, finalCleanup } from "./harness.ts";
import { busyboxLayer, sha256, tar, writeOciLayout } from "./fixture.ts";
import { startTestRegistry, wrapInIndex } from "./registry_server.ts";
import { goArch } from "../../runtime/container/images/import.ts";
import { pullImage } from "../../runtime/container/images/pull.ts";
import { parseStatefile } from "../../runtime/container/statefile.ts";

const otherArch = () => (goArch() === "amd64" ? "arm64" : "amd64");

Deno.test(e2e("image: pull through the token flow, picking this platform from an index, then run it", async (h) => {
  const { rt, tmp } = h;
  const extra = tar([{ name: "pulled.txt", data: "from the registry\n" }]);
  await writeOciLayout(`${tmp}/reg-busybox`, { layers: [await busyboxLayer(), extra] }, "busybox:1.0");
  await wrapInIndex(`${tmp}/reg-busybox`, "1.0", goArch(), otherArch());
  const reg = startTestRegistry({ "library/busybox": `${tmp}/reg-busybox` });
  try {
    // A one-word name is looked up as given, then under library/ (the convention of public registries).
    const img = await pullImage(rt.images, rt.helper, "busybox:1.0", { registry: reg.url });
    assertEquals(img.refs, ["busybox:1.0"]);
    assertEquals(img.layers[1], await sha256(extra));
    assert(reg.log.some((l) => l.endsWith("/manifests/1.0 401")), "first request is refused");
    assert(reg.log.includes("GET /token 200"), "a token was fetched");
    assert(!reg.log.some((l) => l.includes("0000000000")), "the other platform's manifest is never fetched");
    // The registry can also be named in the reference; the layers are stored already.
    const host = new URL(reg.url).host;
    const again = await pullImage(rt.images, rt.helper, `${host}/library/busybox:1.0`);
    assertEquals(again.id, img.id);
    assertEquals(again.refs, ["busybox:1.0", `${host}/library/busybox:1.0`], "both names point at the one image");
    const [c] = await rt.run(parseStatefile(`container: busybox:1.0\ncommand: ["cat", "/pulled.txt"]\n`));
    const done = await rt.waitContainer(c.id);
    assertEquals(done.exitCode, 0);
    assertEquals(await rt.lastLogLines(c.id), ["from the registry"]);
  } finally {
    await reg.close();
  }
}));

Deno.test(e2e("image: pull rejects a blob that does not match its digest and stores nothing", async ({ rt, tmp }) => {
  const layer = tar([{ name: "evil.txt", data: "tampered in transit\n" }]);
  await writeOciLayout(`${tmp}/reg-bad`, { layers: [await busyboxLayer(), layer] }, "bad:1");
  const manifest = JSON.parse(await Deno.readTextFile(`${tmp}/reg-bad/index.json`)).manifests[0].digest;
  const layers = JSON.parse(await Deno.readTextFile(`${tmp}/reg-bad/blobs/sha256/${manifest.slice(7)}`)).layers;
  const reg = startTestRegistry({ "team/bad": `${tmp}/reg-bad` });
  reg.corrupt(layers[1].digest);
  try {
    await assertRejects(
      () => pullImage(rt.images, rt.helper, `team/bad:1`, { registry: reg.url }),
      /does not match its digest/,
    );
    assertEquals(await rt.images.hasLayer(await sha256(layer)), false);
    await assertRejects(() => rt.images.resolve("team/bad:1"), /not found/);
    await assertRejects(
      () => pullImage(rt.images, rt.helper, `team/missing:1`, { registry: reg.url }),
      /not found/,
    );
  } finally {
    await reg.close();
  }
}));

Deno.test(e2e("image: private registries: Basic auth, tokens for credentials, Docker's config file", async (h) => {
  const { rt, tmp } = h;
  await writeOciLayout(`${tmp}/reg-private`, { layers: [await busyboxLayer()] }, "app:1");
  const user = { username: "ci", password: "s3cret:with:colons" };
  for (const mode of ["basic", "token"] as const) {
    const reg = startTestRegistry({ "team/app": `${tmp}/reg-private` }, { mode, ...user });
    const host = new URL(reg.url).host;
    try {
      await assertRejects(
        () => pullImage(rt.images, rt.helper, `${host}/team/app:1`),
        mode === "basic"
          ? /wants a user name and password for team\/app/
          : /refused a pull token for an anonymous pull/,
      );
      await assertRejects(
        () => pullImage(rt.images, rt.helper, `${host}/team/app:1`, { credentials: { ...user, password: "wrong" } }),
        mode === "basic" ? /refused user ci access to team\/app:1 \(401\)/ : /refused a pull token for user ci/,
      );
      const img = await pullImage(rt.images, rt.helper, `${host}/team/app:1`, { credentials: user });
      assert(img.refs.includes(`${host}/team/app:1`), img.refs.join(", "));
    } finally {
      await reg.close();
    }
  }
  // `docker login` leaves the credentials in config.json: a pull without --user finds them there.
  const reg = startTestRegistry({ "team/app": `${tmp}/reg-private` }, { mode: "basic", ...user });
  const host = new URL(reg.url).host;
  await Deno.mkdir(`${tmp}/docker`, { recursive: true });
  const auth = btoa(`${user.username}:${user.password}`);
  await Deno.writeTextFile(`${tmp}/docker/config.json`, JSON.stringify({ auths: { [`http://${host}`]: { auth } } }));
  const before = Deno.env.get("DOCKER_CONFIG");
  Deno.env.set("DOCKER_CONFIG", `${tmp}/docker`);
  try {
    const img = await pullImage(rt.images, rt.helper, `${host}/team/app:1`, { tag: "from-config:1" });
    assert(img.refs.includes("from-config:1"), img.refs.join(", "));
  } finally {
    if (before === undefined) Deno.env.delete("DOCKER_CONFIG");
    else Deno.env.set("DOCKER_CONFIG", before);
    await reg.close();
  }
}));

Deno.test(finalCleanup());
