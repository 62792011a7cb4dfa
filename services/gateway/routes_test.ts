// Route matching for one host: functions, websites and containers side by side, most specific first.
import { assertEquals } from "../../tests/helpers/assert.ts";
import { compileRoutes, matchRoute } from "./routes.ts";
import type { ContainerDeployment, DeploymentRecord, FunctionDeployment, WebsiteDeployment } from "../tns/records.ts";

const HOST = "app.localtau";

const fn = (name: string, method: string, path: string): FunctionDeployment => ({
  name,
  id: name,
  cid: `cid-${name}`,
  call: name,
  timeoutMs: 1000,
  memoryBytes: 1 << 20,
  routes: [{ fqdn: HOST, method, path }],
});

const site: WebsiteDeployment = {
  name: "site",
  id: "site",
  root: "root",
  spa: false,
  routes: [{ fqdn: HOST, path: "/" }],
};

const api: ContainerDeployment = {
  name: "api",
  id: "api",
  image: "busybox",
  imageId: "sha256:x",
  port: 8080,
  env: {},
  limits: {},
  replicas: 1,
  key: "k",
  routes: [{ fqdn: HOST, path: "/api" }],
};

const record: DeploymentRecord = {
  project: "p",
  branch: "main",
  commit: "c",
  configCommit: "c",
  jobId: "j",
  createdAt: "",
  functions: [fn("ping", "GET", "/api/ping"), fn("user", "GET", "/api/users/:id")],
  websites: [site],
  containers: [api],
};

function what(method: string, path: string): string {
  const m = matchRoute(compileRoutes(record).get(HOST)!, method, path);
  if (m.kind === "function") return `function ${m.fn.name}`;
  if (m.kind === "website") return `website ${m.site.name}${m.rest}`;
  if (m.kind === "container") return `container ${m.container.name}`;
  return m.kind;
}

Deno.test("routes: a container's prefix sits between exact function routes and a website at /", () => {
  assertEquals(what("GET", "/api/ping"), "function ping", "an exact function path wins");
  assertEquals(what("GET", "/api/users/7"), "function user", "a :param function path wins");
  assertEquals(what("POST", "/api/ping"), "container api", "a method the function lacks falls to the prefix");
  assertEquals(what("DELETE", "/api/orders/1"), "container api", "every method goes to a container");
  assertEquals(what("GET", "/api"), "container api");
  assertEquals(what("GET", "/apis"), "website site/apis", "a prefix matches whole segments only");
  assertEquals(what("GET", "/about.html"), "website site/about.html");
});

Deno.test("routes: records written before containers existed still compile", () => {
  const old = { ...record, containers: undefined };
  const m = matchRoute(compileRoutes(old).get(HOST)!, "GET", "/api/x");
  assertEquals(m.kind, "website");
});

Deno.test("routes: a :param that is not valid percent-encoding is the client's error, not a throw", () => {
  const routes = compileRoutes(record).get(HOST)!;
  assertEquals(matchRoute(routes, "GET", "/api/users/%E0%A4%A"), { kind: "bad-path", segment: "%E0%A4%A" });
  assertEquals(matchRoute(routes, "GET", "/api/users/%E0%A4%A4"), {
    kind: "function",
    fn: record.functions[1],
    params: { id: "\u0924" },
  });
  assertEquals(what("GET", "/api/other/%E0"), "container api", "a path no :param route matches is not decoded");
});
