// End to end: the real CLI (`deno run -A main.ts ...`) scaffolding resources into a temp project and validating it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { compileAssemblyScript } from "../runtime/wasm/compile_as.ts";

import { type Run, tau as runTau } from "./helpers/cloud.ts";
import { TAUBYTE_STYLE } from "./fixtures/taubyte_style.ts";

const tau = (args: string[], cwd?: string): Promise<Run> => runTau(args, { cwd, stdin: "null" });

async function withProject(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tau-resources-" });
  try {
    await Deno.mkdir(join(dir, "config"));
    await Deno.mkdir(join(dir, "code"));
    await Deno.writeTextFile(join(dir, "config", "config.yaml"), "id: ''\nname: hello\ndescription: demo\ntags: []\n");
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("tau new domain/function/website/library/application, then tau validate", async () => {
  await withProject(async (dir) => {
    let r = await tau(["new", "domain", "hello", "--fqdn", "hello.localtau", "--dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await Deno.readTextFile(join(dir, "config/domains/hello.yaml")), /fqdn: hello\.localtau/);

    // --domains defaults to the only domain there is.
    r = await tau(["new", "function", "ping", "--paths", "/ping", "--timeout", "5s", "--dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /config\/functions\/ping\.yaml/);
    assert.match(r.stdout, /code\/functions\/ping\/index\.ts/);
    assert.match(r.stdout, /git -C config .*commit.* && git -C config push/);
    const yaml = await Deno.readTextFile(join(dir, "config/functions/ping.yaml"));
    assert.match(yaml, /paths: \[\/ping\]/);
    assert.match(yaml, /domains: \[hello\]/);
    assert.match(yaml, /timeout: 5s/);
    assert.match(yaml, /id: [0-9a-f]{32}/);
    const starter = await Deno.readTextFile(join(dir, "code/functions/ping/index.ts"));
    assert.match(starter, /export function ping\(\)/);
    // The starter code must build against the real SDK, with the export the YAML's `call` names.
    const wasm = await compileAssemblyScript({ "index.ts": starter }, "index.ts", "ping");
    assert(WebAssembly.Module.exports(new WebAssembly.Module(new Uint8Array(wasm))).some((e) => e.name === "ping"));

    r = await tau(["new", "website", "site", "--domains", "hello", "--spa", "--dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await Deno.readTextFile(join(dir, "config/websites/site.yaml")), /spa: true/);
    assert.match(await Deno.readTextFile(join(dir, "code/websites/site/index.html")), /<html/);

    r = await tau(["new", "library", "tools", "--dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    r = await tau(["new", "application", "shop", "--dir", dir]);
    assert.equal(r.code, 0, r.stderr);

    // From inside code/: the project is found by walking up. App-scoped function with the wasm template.
    r = await tau(
      ["new", "function", "upload", "--app", "shop", "--template", "wasm", "--method", "post", "--paths", "/up"],
      join(dir, "code"),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      await Deno.readTextFile(join(dir, "code/applications/shop/functions/upload/README.md")),
      /drop your \.wasm here/i,
    );
    assert.match(await Deno.readTextFile(join(dir, "config/applications/shop/functions/upload.yaml")), /method: POST/);

    r = await tau(["validate", "--dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^config OK: 2 functions, 1 website, 1 domain, 1 library, 1 application$/m);
  });
});

Deno.test("tau new refuses to overwrite, and refuses resources that would not validate", async () => {
  await withProject(async (dir) => {
    await tau(["new", "domain", "hello", "--fqdn", "hello.localtau", "--dir", dir]);
    await tau(["new", "function", "ping", "--dir", dir]);
    const before = await Deno.readTextFile(join(dir, "config/functions/ping.yaml"));

    let r = await tau(["new", "function", "ping", "--dir", dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /function 'ping' already exists: config\/functions\/ping\.yaml/);
    assert.match(r.stderr, /hint: /);
    assert.equal(await Deno.readTextFile(join(dir, "config/functions/ping.yaml")), before);

    r = await tau(["new", "function", "hello-world", "--dir", dir]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /invalid function name 'hello-world': start with a letter or _, then letters, digits or _, e\.g\. hello_world/,
    );

    // Same route as ping: the validator rejects it and nothing is written.
    r = await tau(["new", "function", "pong", "--paths", "/ping", "--dir", dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /route GET hello\.localtau\/ping is already served by function 'ping'/);
    await assert.rejects(Deno.stat(join(dir, "config/functions/pong.yaml")), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(join(dir, "code/functions/pong")), Deno.errors.NotFound);

    r = await tau(["new", "function", "other", "--domains", "nope", "--dir", dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /domain 'nope' does not exist/);
  });
});

Deno.test("tau validate prints every issue as file:line: message and exits 1", async () => {
  await withProject(async (dir) => {
    await Deno.mkdir(join(dir, "config/functions"));
    await Deno.writeTextFile(
      join(dir, "config/functions/ping.yaml"),
      "trigger:\n  method: GETT\n  paths: [/ping]\n  domains: [hello]\n",
    );
    const r = await tau(["validate"], join(dir, "config"));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^functions\/ping\.yaml:2: trigger\.method 'GETT' is not an HTTP method$/m);
    assert.match(r.stderr, /^functions\/ping\.yaml:4: trigger\.domains\[0\]: domain 'hello' does not exist/m);
    assert.match(r.stderr, /has 2 issues/);
  });
});

Deno.test("tau new container writes a Statefile that validates; bad options write nothing", async () => {
  await withProject(async (dir) => {
    let r = await tau(["new", "domain", "web", "--fqdn", "web.hello.localtau", "--dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    r = await tau([
      "new",
      "container",
      "api",
      "--image",
      "busybox:latest",
      "--command",
      "httpd -f -p 8080",
      "--dir",
      dir,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const yaml = await Deno.readTextFile(join(dir, "config/containers/api.yaml"));
    assert.match(yaml, /container: busybox:latest/);
    assert.match(yaml, /command: \[httpd, -f, -p, "8080"\]/);
    assert.match(yaml, /domains: \[web\]/);
    r = await tau(["validate", "--dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1 container/);

    r = await tau(["new", "container", "bad", "--image", "busybox", "--port", "70000", "--dir", dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: config\/containers\/bad\.yaml:\d+: port: "70000" is not a port/);
    assert.equal(await Deno.stat(join(dir, "config/containers/bad.yaml")).then(() => true, () => false), false);
  });
});

Deno.test("tau validate accepts a Taubyte config repo, printing what it will not act on as warnings", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tau-taubyte-" });
  try {
    for (const [file, text] of Object.entries(TAUBYTE_STYLE)) {
      await Deno.mkdir(join(dir, file, ".."), { recursive: true });
      await Deno.writeTextFile(join(dir, file), text);
    }
    const r = await tau(["validate", "--dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /config OK: 4 functions, 1 website, 1 domain, 1 library, 1 application, 1 database/);
    assert.match(
      r.stderr,
      /warning: websites\/photos\.yaml:3: website photos's source is the GitHub repo acme\/photos, which tau does not/,
    );
    // A dangling smartop tag is still an error naming file and line.
    const answer = join(dir, "functions/answer.yaml");
    await Deno.writeTextFile(answer, `tags: [smartops:gone]\n${TAUBYTE_STYLE["functions/answer.yaml"]}`);
    const bad = await tau(["validate", "--dir", dir]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /functions\/answer\.yaml:1: tags\[0\]: smartops 'gone' does not exist in smartops\//);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
