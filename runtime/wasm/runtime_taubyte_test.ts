// Taubyte's ABI (module `taubyte/sdk`), HTTP event calls: a guest written here in WAT with the same import names and
// signatures as Taubyte's SDKs reads its request and writes its answer; bad pointers and wrong event ids are errnos.
import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { Harness, LIMITS, wat } from "./test_support.ts";
import { TAUBYTE_GUEST } from "../../tests/fixtures/taubyte_guest.ts";
import { prepareModule } from "./prepare.ts";
import { canonicalHeader } from "./taubyte/http_event.ts";

Deno.test("a taubyte/sdk guest reads method, path, query and body and writes status, headers and body", async () => {
  const h = new Harness();
  try {
    const target = await h.addWasm("ping", TAUBYTE_GUEST, LIMITS, "ping");
    const req = new Request("http://fn.test/hello/there?name=ada&x=1", { method: "POST", body: "the body" });
    const res = await h.invoke(target, req);
    // 200 + event type (http = 1) * 10 + errnos 3 + 1 + 2
    assertEquals(res.status, 216);
    assertEquals(res.headers.get("content-type"), "text/plain");
    assertEquals(await res.text(), "init /hello/there ada the body");
    // The instance is warm: a second call gets a new event id and its own request.
    const again = await h.invoke(target, new Request("http://fn.test/two?name=bob", { method: "POST", body: "b2" }));
    assertEquals(await again.text(), "init /two bob b2");
  } finally {
    await h.runtime.close();
  }
});

Deno.test("a module calling a taubyte/sdk function tau does not provide is refused at build, naming it", async () => {
  const db = wat(`(module
    (import "taubyte/sdk" "ethNewClient" (func (param i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "ping") (param i32) (result i32) (i32.const 0)))`);
  await assertRejects(
    () => prepareModule(db, LIMITS, "ping"),
    /^function ping calls taubyte\/sdk\.ethNewClient, which tau does not provide yet$/,
  );
});

Deno.test("header names listed to a taubyte/sdk guest are canonical, as Go's net/http gives them", () => {
  assertEquals(canonicalHeader("content-type"), "Content-Type");
  assertEquals(canonicalHeader("x-request-id"), "X-Request-Id");
  assertEquals(canonicalHeader("accept"), "Accept");
});
