/**
 * V8 flags a serving node runs with. `deno task dev|serve` pass them (deno.json), `deno task compile` embeds them in
 * the binary, and the tests' and benchmarks' node launchers add them: one list, here.
 *
 * --no-wasm-lazy-compilation: a module is compiled whole (Liftoff, on V8's background threads) when it is compiled,
 * rather than each function on its first call. With modules compiled at deploy (FunctionRuntime.prepare), the first
 * request then runs compiled code: a 112 KB module's first call went from 10-28 ms to ~1 ms over a warm one in-process,
 * and its first request through the gateway from 19 ms to 1.3-7 ms (bench/gateway_bench.ts, cold start). The cost
 * is code memory for functions a request never calls.
 */
export const NODE_V8_FLAGS = ["--no-wasm-lazy-compilation"];

/** The flags as one `deno run` / `deno compile` argument. */
export const NODE_V8_FLAGS_ARG = `--v8-flags=${NODE_V8_FLAGS.join(",")}`;
