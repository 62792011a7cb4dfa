// The baselines, each the fastest Deno can serve:
//   raw_server.ts <port>        a hello world with a zero-argument handler (Deno then makes no Request object at
//                               all): every gateway figure is a ratio against this, same run (the issues' baseline);
//   raw_server.ts <port> same   the same answers tau sends (status, headers, body) from a handler that reads its
//                               request's path: the floor for any server in Deno that routes requests.
const port = Number(Deno.args[0] ?? 18300);
const onListen = () => console.log(`raw ready ${port}`);
if (Deno.args[1] === "same") {
  const file = "x".repeat(4096);
  const fileHeaders = { "content-type": "text/plain; charset=utf-8", etag: '"bafkreifile4k"' };
  const wagi = "method=GET\npath=/wagi\nquery=\nx-test=\nid=\nbody=\n";
  const wagiHeaders = { "content-type": "text/plain", "x-echo-method": "GET" };
  Deno.serve({ hostname: "127.0.0.1", port, onListen }, (req) => {
    const url = req.url;
    const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
    if (path === "/file4k.txt") return new Response(file, { headers: fileHeaders });
    if (path === "/wagi") return new Response(wagi, { headers: wagiHeaders });
    return new Response("hello v3", { headers: { "content-type": "text/plain" } });
  });
} else {
  Deno.serve({ hostname: "127.0.0.1", port, onListen }, () => new Response("hello"));
}
