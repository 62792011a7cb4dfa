import { parseChallenge, parsePullRef } from "./registry.ts";

function eq(a: unknown, b: unknown) {
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    throw new Error(`expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
  }
}

Deno.test("registry: references with and without a registry", () => {
  eq(parsePullRef("127.0.0.1:5000/team/app:1.2"), {
    base: "http://127.0.0.1:5000",
    name: "team/app",
    reference: "1.2",
  });
  eq(parsePullRef("localhost/app"), { base: "http://localhost", name: "app", reference: "latest" });
  eq(parsePullRef("busybox", "http://127.0.0.1:9/"), {
    base: "http://127.0.0.1:9",
    name: "busybox",
    reference: "latest",
  });
  const d = "sha256:" + "a".repeat(64);
  eq(parsePullRef(`app@${d}`, "127.0.0.1:9").reference, d);
  eq(parsePullRef("registry.example/app:1").base, "https://registry.example");
  for (const bad of ["busybox", "127.0.0.1:5000/Bad:1"]) {
    let threw = false;
    try {
      parsePullRef(bad);
    } catch {
      threw = true;
    }
    if (!threw) throw new Error(`${bad} should be refused`);
  }
});

Deno.test("registry: bearer challenges", () => {
  eq(parseChallenge('Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull"'), {
    realm: "http://127.0.0.1:1/token",
    service: "reg",
    scope: "repository:a/b:pull",
  });
  eq(parseChallenge('Basic realm="x"'), null);
});
