// The baseline: the fastest hello world Deno can serve. Every gateway figure is a ratio against this, same run.
const port = Number(Deno.args[0] ?? 18300);
Deno.serve(
  { hostname: "127.0.0.1", port, onListen: () => console.log(`raw ready ${port}`) },
  () => new Response("hello"),
);
