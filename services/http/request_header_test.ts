import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { hasFastHeaders, requestHeader } from "./request_header.ts";

Deno.test("requestHeader reads one header of a served request like req.headers.get, without copying the rest", async () => {
  const seen: unknown[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    // Before req.headers is touched: the one-header path must be there on the Deno tau pins.
    seen.push(hasFastHeaders(req));
    const fast = ["host", "x-twice", "x-none", "if-none-match"].map((n) => requestHeader(req, n));
    const slow = ["host", "x-twice", "x-none", "if-none-match"].map((n) => req.headers.get(n));
    seen.push(fast, slow);
    return new Response("ok");
  });
  try {
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/`, {
      headers: [["x-twice", "1"], ["x-twice", "2"], ["if-none-match", '"abc"']],
    });
    await res.body?.cancel();
  } finally {
    await server.shutdown();
  }
  assert(seen[0] === true, "Deno no longer keeps its server request under Symbol(request) with header(name)");
  assertEquals(seen[1], seen[2]);
  assertEquals((seen[1] as (string | null)[]).slice(1), ["1, 2", null, '"abc"']);
  // A Request made in JS has no such inner request: the public way answers.
  const made = new Request("http://a.test/", { headers: { "x-a": "1" } });
  assertEquals(requestHeader(made, "x-a"), "1");
});
