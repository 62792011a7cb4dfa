// Taubyte's v1 config schema, as its compiler reads it: every kind, trigger and form a Taubyte config repo may hold
// parses, and each bad value is one issue with its file and line.
import assert from "node:assert/strict";
import { issueChecks } from "./test_support.ts";
import { formatIssue, parseProjectConfig } from "./mod.ts";
import { TAUBYTE_STYLE } from "../../tests/fixtures/taubyte_style.ts";

const { issuesOf, expectIssue } = issueChecks(TAUBYTE_STYLE);

Deno.test("a Taubyte-style project parses: every kind, every trigger type, source objects, ids per scope", () => {
  const { config, issues } = parseProjectConfig(TAUBYTE_STYLE);
  assert.deepEqual(issues.map(formatIssue), []);
  assert(config);
  const ping = config.functions.find((f) => f.name === "PingUpper")!;
  assert.deepEqual(ping.trigger, { type: "http", method: "GET", paths: ["/ping"], domains: ["main"], local: false });
  // No project-side maxima: the build clamps to what the node allows (services/monkey/functions.ts).
  assert.equal(ping.execution.timeoutMs, 75 * 60_000);
  assert.equal(ping.execution.memoryBytes, 64_000_000_000);
  const order = config.functions.find((f) => f.name === "on_order")!;
  assert.deepEqual(order.trigger, {
    type: "pubsub",
    method: "",
    paths: [],
    domains: [],
    channel: "orders",
    local: true,
  });
  const answer = config.functions.find((f) => f.name === "answer")!;
  assert.equal(answer.trigger.protocol, "/shop/v1");
  assert.equal(answer.trigger.command, "price");

  const site = config.websites[0];
  assert.deepEqual(site.paths, ["/photos"], "a website's source.paths are its paths");
  assert.deepEqual(site.repo, { provider: "github", id: "123456", fullname: "acme/photos", branch: "main" });
  assert.equal(site.source, ".");
  assert.equal(config.libraries[0].repo?.fullname, "acme/tools");
  assert.deepEqual(
    config.warnings.map((w) => w.file),
    ["libraries/tools.yaml", "websites/photos.yaml"],
    "a repo tau does not fetch is a warning, not an error",
  );

  assert.deepEqual(config.databases.map((d) => [d.match, d.regex, d.network, d.sizeBytes]), [
    ["/users", true, "all", 5_000_000_000],
  ]);
  const [files, photos] = config.storages;
  assert.deepEqual([files.type, files.versioning, files.sizeBytes], ["object", true, 50_000_000_000]);
  assert.deepEqual([photos.type, photos.ttlMs, photos.network], ["streaming", 300_000, "host"]);
  assert.deepEqual(config.messaging.map((m) => [m.match, m.local, m.websocket, m.mqtt]), [[
    "orders",
    false,
    true,
    false,
  ]]);
  assert.equal(config.services[0].protocol, "/shop/v1");
  assert.deepEqual(config.smartops.map((s) => [s.app, s.name, s.source]), [
    ["admin", "admin_only", "libraries/tools"],
    [undefined, "gpu_check", "."],
  ]);
  assert.equal(config.functions.filter((f) => f.id === "QmFnPing").length, 2);
});

Deno.test("Taubyte kinds: each bad value is one issue with its file and line", () => {
  const cases: [string, string, number | undefined, RegExp][] = [
    [
      "databases/users.yaml",
      "match: '[a-'\nuseRegex: true\nstorage: {size: 1GB}\n",
      1,
      /match '\[a-' is not a regular expression/,
    ],
    [
      "databases/users.yaml",
      "match: '(a+)+$'\nuseRegex: true\nstorage: {size: 1GB}\n",
      1,
      /match '\(a\+\)\+\$' can take exponential time/,
    ],
    ["databases/users.yaml", "match: users\n", undefined, /storage\.size is required/],
    [
      "databases/users.yaml",
      "match: users\naccess: {network: world}\nstorage: {size: 1GB}\n",
      2,
      /'world' is not one of all, subnet, host/,
    ],
    [
      "storages/files.yaml",
      "object: {size: 1GB}\nstreaming: {ttl: 1m, size: 1GB}\n",
      2,
      /either object: \{\.\.\.\} or streaming/,
    ],
    ["storages/files.yaml", "match: files\nstreaming: {size: 1GB}\n", 2, /streaming\.ttl is required/],
    [
      "messaging/orders.yaml",
      "channel: {regex: true, match: '(('}\n",
      1,
      /channel\.match '\(\(' is not a regular expression/,
    ],
    ["messaging/orders.yaml", "local: yes\nchannel: {match: a}\n", 1, /local must be true or false/],
    ["services/shop.yaml", "protocol: shop v1\n", 1, /must start with "\/"/],
    ["smartops/gpu_check.yaml", "source: libraries/nope\n", 1, /library 'nope' does not exist/],
    ["functions/on_order.yaml", "trigger: {type: pubsub}\n", 1, /trigger\.channel is required for a pubsub trigger/],
    [
      "functions/on_order.yaml",
      "trigger: {type: pubsub, channel: a, paths: [/a]}\n",
      1,
      /trigger\.paths is for http triggers; this one is pubsub/,
    ],
    [
      "functions/answer.yaml",
      "trigger: {type: p2p, command: price}\n",
      1,
      /trigger\.protocol \(or service\) is required/,
    ],
    [
      "functions/answer.yaml",
      "trigger: {type: https, paths: [/a]}\n",
      1,
      /trigger\.domains \(or domains\) is required/,
    ],
    [
      "functions/PingUpper.yaml",
      "tags: [smartops:missing]\ntrigger: {paths: [/p], domains: [main]}\n",
      1,
      /smartops 'missing' does not exist/,
    ],
  ];
  for (const [file, text, line, message] of cases) expectIssue({ [file]: text }, file, line, message);
});

Deno.test("a smartop tag in an application resolves to the application's smartop, then the project's", () => {
  const tagged = (tag: string) => `tags: [${tag}]\ntrigger: {type: https, paths: [/t], domains: [main]}\n`;
  assert.deepEqual(issuesOf({ "applications/admin/functions/t.yaml": tagged("smartops:admin_only") }), []);
  assert.deepEqual(issuesOf({ "applications/admin/functions/t.yaml": tagged("smartops:gpu_check") }), []);
  expectIssue(
    { "functions/t.yaml": tagged("smartops:admin_only") },
    "functions/t.yaml",
    1,
    /smartops 'admin_only' does not exist in smartops\//,
  );
});
