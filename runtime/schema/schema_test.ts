// Unit tests of the schema: parsing, every class of issue (with file and line), ids, units and the route table.
import assert from "node:assert/strict";
import { issueChecks } from "./test_support.ts";
import { assertValid, codeDirOf, parseDuration, parseProjectConfig, parseSize, routesOf } from "./mod.ts";
import { TauError } from "../errors.ts";
import { BEGIN, END, normaliseReference, schemaReference } from "./reference.ts";

const PING = `description: answers ping
tags: []
source: .
trigger:
  type: https
  method: GET
  paths: [/ping]
  domains: [hello]
execution:
  timeout: 10s
  memory: 10MB
  call: ping
`;

const VALID: Record<string, string> = {
  "config.yaml": "id: ''\nname: hello\ndescription: demo\ntags: [demo]\n",
  "README.md": "not config",
  "domains/hello.yaml": "fqdn: hello.localtau\n",
  "domains/api.yaml": "fqdn: api.hello.localtau\ncertificate:\n  type: auto\n",
  "functions/ping.yaml": PING,
  "functions/users.yaml": "trigger:\n  method: any\n  paths: [/users/:id, /files/*]\n  domains: [api]\n",
  "functions/shared.yaml": "source: libraries/tools\ntrigger: {paths: [/tools], domains: [hello], method: post}\n",
  "libraries/tools.yaml": "description: shared code\n",
  "websites/site.yaml": "domains: [hello]\npaths: [/]\nspa: true\nbuild: dist\n",
  "databases/store.yaml": "match: /store\naccess: {network: host}\nstorage: {size: 1GB}\n",
  "applications/shop/config.yaml": "description: the shop\n",
  "applications/shop/domains/hello.yaml": "fqdn: shop.localtau\n",
  "applications/shop/functions/ping.yaml": "trigger:\n  paths: [/ping]\n  domains: [hello, api]\n",
  "unknown_folder/whatever.yaml": "anything: [",
};

const { issuesOf, expectIssue } = issueChecks(VALID);

Deno.test("a valid project parses with defaults filled in", () => {
  const { config, issues } = parseProjectConfig(VALID);
  assert.deepEqual(issues, []);
  assert(config);
  assert.equal(config.name, "hello");
  assert.deepEqual(config.applications.map((a) => a.name), ["shop"]);
  assert.equal(config.functions.length, 4);
  const ping = config.functions.find((f) => f.name === "ping" && !f.app)!;
  assert.deepEqual(ping.trigger, { type: "https", method: "GET", paths: ["/ping"], domains: ["hello"], local: false });
  assert.deepEqual(ping.execution, {
    timeoutMs: 10_000,
    memoryBytes: 10_000_000,
    bodyBytes: 10_000_000,
    call: "ping",
  });
  assert.equal(ping.file, "functions/ping.yaml");
  const users = config.functions.find((f) => f.name === "users")!;
  assert.equal(users.trigger.method, "*");
  assert.deepEqual(users.execution, {
    timeoutMs: 10_000,
    memoryBytes: 16_000_000,
    bodyBytes: 10_000_000,
    call: "users",
  });
  assert.equal(config.functions.find((f) => f.name === "shared")!.source, "libraries/tools");
  assert.equal(config.functions.find((f) => f.app === "shop")!.name, "ping");
  assert.deepEqual(config.websites[0].spa, true);
  assert.equal(config.websites[0].build, "dist");
  assert.deepEqual(config.domains.find((d) => d.name === "api")!.certificate, { type: "auto" });
  assert.equal(config.libraries[0].name, "tools");
  const { id: _id, ...store } = config.databases[0];
  assert.deepEqual(store, {
    kind: "database",
    name: "store",
    file: "databases/store.yaml",
    description: "",
    tags: [],
    match: "/store",
    regex: false,
    network: "host",
    sizeBytes: 1_000_000_000,
  });
});

Deno.test("ids are generated, stable, and explicit ids win", () => {
  const a = parseProjectConfig(VALID).config!;
  const b = parseProjectConfig({ ...VALID }).config!;
  assert.equal(a.functions[0].id, b.functions[0].id);
  assert.match(a.functions[0].id, /^[0-9a-f]{32}$/);
  const ids = [...a.functions, ...a.domains].map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length, "app and project resources with the same name get different ids");
  const c = parseProjectConfig({ ...VALID, "functions/ping.yaml": `id: my-id\n${PING}` }).config!;
  assert.equal(c.functions.find((f) => f.name === "ping" && !f.app)!.id, "my-id");
  const renamed = parseProjectConfig({ ...VALID, "config.yaml": "name: other\n" }).config!;
  assert.notEqual(renamed.functions[0].id, a.functions[0].id);
});

Deno.test("names: dashes and bad file names are reported", () => {
  expectIssue(
    { "functions/hello-world.yaml": PING.replace("/ping", "/hw") },
    "functions/hello-world.yaml",
    undefined,
    /^invalid name 'hello-world': start with a letter or _, then letters, digits or _, e\.g\. hello_world$/,
  );
  expectIssue({ "functions/ping.yaml": `name: pong\n${PING}` }, "functions/ping.yaml", 1, /must match the file name/);
  expectIssue(
    { "applications/9shop/config.yaml": "" },
    "applications/9shop/config.yaml",
    undefined,
    /start with a letter/,
  );
});

Deno.test("field errors point at the offending line", () => {
  const cases: [string, number, RegExp][] = [
    ["method: GET", 6, /^trigger\.method 'GETT' is not an HTTP method$/],
    ["paths: [/ping]", 7, /trigger\.paths\[0\] 'ping' must start with "\/"/],
    ["timeout: 10s", 10, /execution\.timeout 10 has no unit/],
    ["memory: 10MB", 11, /not a size/],
    ["type: https", 5, /trigger\.type 'mqtt' is not a trigger type \(https, http, pubsub, p2p, cron\)/],
    ["call: ping", 12, /not an exported symbol name/],
    ["tags: []", 2, /tags must be a list/],
  ];
  const replacement = [
    "method: GETT",
    "paths: [ping]",
    "timeout: 10",
    "memory: lots",
    "type: mqtt",
    "call: not-valid",
    "tags: {a: 1}",
  ];
  cases.forEach(([from, line, message], i) => {
    expectIssue({ "functions/ping.yaml": PING.replace(from, replacement[i]) }, "functions/ping.yaml", line, message);
  });
});

Deno.test("cron triggers and secrets: a bad schedule or secret name names its file and line", () => {
  const CRON = "description: ticks\ntrigger:\n  type: cron\n  schedule: '@every 1s'\nsecrets: [API_KEY]\n";
  const config = assertValid(parseProjectConfig({ ...VALID, "functions/tick.yaml": CRON }));
  const tick = config.functions.find((f) => f.name === "tick")!;
  assert.deepEqual(tick.trigger.schedule, "@every 1s");
  assert.equal(tick.trigger.catchup, false);
  assert.deepEqual(tick.secrets, ["API_KEY"]);
  assert.deepEqual(config.functions.find((f) => f.name === "ping")!.secrets, []);
  const bad: [string, number, RegExp][] = [
    ["schedule: '61 * * * *'", 4, /^trigger\.schedule '61 \* \* \* \*': the minute field '61': 61 is outside 0-59$/],
    ["schedule: '@every 10ms'", 4, /trigger\.schedule '@every 10ms': the period must be at least 1s/],
    ["schedule: '* * *'", 4, /has 3 fields: a schedule has five/],
    ["schedule: '@every 1s'\n  catchup: maybe", 5, /trigger\.catchup must be true or false/],
    ["schedule: '@every 1s'\n  paths: [/x]", 5, /trigger\.paths is for http triggers; this one is cron/],
  ];
  for (const [line, at, message] of bad) {
    expectIssue(
      { "functions/tick.yaml": CRON.replace("schedule: '@every 1s'", line) },
      "functions/tick.yaml",
      at,
      message,
    );
  }
  expectIssue(
    { "functions/tick.yaml": CRON.replace("  schedule: '@every 1s'\n", "") },
    "functions/tick.yaml",
    2,
    /trigger\.schedule is required for a cron trigger/,
  );
  expectIssue(
    { "functions/tick.yaml": CRON.replace("[API_KEY]", "[api-key]") },
    "functions/tick.yaml",
    5,
    /secrets\[0\] 'api-key' is not a secret name: use upper case, digits and _/,
  );
});

Deno.test("unknown keys, missing keys, broken YAML and wrong shapes", () => {
  expectIssue(
    { "functions/ping.yaml": PING.replace("trigger:", "triger:") + "trigger: {paths: [/p], domains: [hello]}\n" },
    "functions/ping.yaml",
    4,
    /^unknown key 'triger': did you mean 'trigger'\?$/,
  );
  expectIssue(
    { "functions/ping.yaml": PING.replace("  paths: [/ping]\n", "") },
    "functions/ping.yaml",
    4,
    /^trigger\.paths is required, e\.g\. \[\/ping\]$/,
  );
  expectIssue({ "domains/api.yaml": "description: x\n" }, "domains/api.yaml", undefined, /^fqdn is required/);
  expectIssue({ "functions/ping.yaml": "trigger:\n  paths: [/ping\n" }, "functions/ping.yaml", 3, /./);
  expectIssue({ "functions/ping.yaml": "- a\n- b\n" }, "functions/ping.yaml", undefined, /must be a mapping/);
  expectIssue({ "domains/api.yaml": "fqdn: API.hello.localtau\n" }, "domains/api.yaml", 1, /must be lowercase/);
  expectIssue({ "domains/api.yaml": "fqdn: bad_host.localtau\n" }, "domains/api.yaml", 1, /not a valid DNS name/);
  expectIssue(
    { "functions/ping.yaml": "trigger:\n  paths: /a\n  domains: [hello]\n  method: GET\n  method: PUT\n" },
    "functions/ping.yaml",
    5,
    /unique/i,
  );
  const missing = parseProjectConfig({ "functions/ping.yaml": PING });
  assert.deepEqual(missing.issues.map((i) => i.file), ["config.yaml"]);
  assert.equal(missing.config, undefined);
});

Deno.test("references must resolve, application scope first", () => {
  expectIssue(
    { "functions/ping.yaml": PING.replace("[hello]", "[hello, nope]") },
    "functions/ping.yaml",
    8,
    /trigger\.domains\[1\]: domain 'nope' does not exist in domains\/ \(create it: tau new domain nope/,
  );
  expectIssue(
    { "functions/shared.yaml": "source: libraries/nolib\ntrigger: {paths: [/tools], domains: [hello]}\n" },
    "functions/shared.yaml",
    1,
    /library 'nolib' does not exist/,
  );
  expectIssue(
    { "functions/shared.yaml": "source: elsewhere\ntrigger: {paths: [/tools], domains: [hello]}\n" },
    "functions/shared.yaml",
    1,
    /must be "\." or "libraries\/<library name>"/,
  );
  expectIssue(
    { "applications/shop/functions/ping.yaml": "trigger:\n  paths: [/ping]\n  domains: [nope]\n" },
    "applications/shop/functions/ping.yaml",
    3,
    /in applications\/shop\/domains\/ or domains\//,
  );
  expectIssue(
    { "applications/cart/functions/x.yaml": "trigger: {paths: [/x], domains: [hello]}\n" },
    "applications/cart/config.yaml",
    undefined,
    /application 'cart' has no config\.yaml/,
  );
});

Deno.test("route conflicts: same fqdn+method+path, or function and website on the same host+path", () => {
  expectIssue(
    { "functions/pong.yaml": "trigger: {paths: [/ping], domains: [hello]}\n" },
    "functions/pong.yaml",
    1,
    /route GET hello\.localtau\/ping is already served by function 'ping' \(functions\/ping\.yaml\)/,
  );
  // Different method: no clash. ANY clashes with everything.
  assert.deepEqual(
    issuesOf({ "functions/pong.yaml": "trigger: {method: POST, paths: [/ping], domains: [hello]}\n" }),
    [],
  );
  assert.equal(
    issuesOf({ "functions/pong.yaml": "trigger: {method: '*', paths: [/ping], domains: [hello]}\n" }).length,
    1,
  );
  expectIssue(
    { "functions/home.yaml": "trigger:\n  paths: [/x, /]\n  domains: [hello]\n" },
    "websites/site.yaml",
    2,
    /route GET hello\.localtau\/ is already served by function 'home'/,
  );
  // The application's own "hello" domain is another fqdn: the same method and path do not clash.
  const appTools = "trigger: {method: POST, paths: [/tools], domains: [hello]}\n";
  assert.deepEqual(issuesOf({ "applications/shop/functions/tools.yaml": appTools }), []);
});

Deno.test("routesOf resolves app-scoped and project-scoped domains", () => {
  const routes = routesOf(parseProjectConfig(VALID).config!);
  const show = routes.map((r) => `${r.kind} ${r.resource} ${r.method} ${r.fqdn}${r.path}`).sort();
  assert.deepEqual(show, [
    "function ping GET hello.localtau/ping",
    "function shared POST hello.localtau/tools",
    "function shop/ping GET api.hello.localtau/ping",
    "function shop/ping GET shop.localtau/ping",
    "function users * api.hello.localtau/files/*",
    "function users * api.hello.localtau/users/:id",
    "website site GET hello.localtau/",
  ]);
});

Deno.test("codeDirOf: own folder per scope, or the library's folder", () => {
  const config = parseProjectConfig({
    ...VALID,
    "applications/shop/libraries/tools.yaml": "",
    "applications/shop/functions/cart.yaml": "source: libraries/tools\ntrigger: {paths: [/cart], domains: [hello]}\n",
  }).config!;
  const fn = (name: string, app?: string) => config.functions.find((f) => f.name === name && f.app === app)!;
  assert.equal(codeDirOf(fn("ping")), "functions/ping");
  assert.equal(codeDirOf(fn("ping", "shop")), "applications/shop/functions/ping");
  assert.equal(codeDirOf(fn("shared"), config), "libraries/tools");
  assert.equal(codeDirOf(fn("cart", "shop"), config), "applications/shop/libraries/tools");
  assert.equal(codeDirOf(config.websites[0]), "websites/site");
});

Deno.test("durations and sizes", () => {
  assert.equal(parseDuration("100ms"), 100);
  assert.equal(parseDuration("5s"), 5000);
  assert.equal(parseDuration("1m"), 60_000);
  assert.equal(parseDuration("1m30s"), 90_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration(250), 250);
  assert.throws(() => parseDuration("soon"), /not a duration/);
  assert.throws(() => parseDuration("5 parsecs"), /not a duration/);
  // Decimal as in Taubyte; binary with the i.
  assert.equal(parseSize("64KB"), 64_000);
  assert.equal(parseSize("64KiB"), 65536);
  assert.equal(parseSize("10MB"), 10_000_000);
  assert.equal(parseSize("1GiB"), 1024 ** 3);
  assert.equal(parseSize("64GB"), 64_000_000_000);
  assert.equal(parseSize("512B"), 512);
  assert.equal(parseSize(4096), 4096);
  assert.throws(() => parseSize("10 parsecs"), /not a size/);
});

Deno.test("assertValid throws a TauError naming the first issue as file:line: message", () => {
  const result = parseProjectConfig({ ...VALID, "functions/ping.yaml": PING.replace("method: GET", "method: GETT") });
  assert.throws(() => assertValid(result), (e: unknown) => {
    assert(e instanceof TauError);
    assert.equal(e.message, "functions/ping.yaml:6: trigger.method 'GETT' is not an HTTP method");
    assert.match(e.detail ?? "", /GETT/);
    return true;
  });
  assert.equal(assertValid(parseProjectConfig(VALID)).name, "hello");
});

Deno.test("docs/config-schema.md carries the field reference generated from the schema", async () => {
  const docs = await Deno.readTextFile(new URL("../../docs/config-schema.md", import.meta.url));
  const inDocs = docs.slice(docs.indexOf(BEGIN), docs.indexOf(END) + END.length);
  assert.equal(
    normaliseReference(inDocs),
    normaliseReference(schemaReference()),
    "run: deno run -A runtime/schema/reference.ts && deno fmt docs/config-schema.md",
  );
});
