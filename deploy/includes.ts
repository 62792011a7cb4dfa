/**
 * What `deno compile` must --include beyond the graph it follows from main.ts (deploy/compile.ts), as paths from the
 * repository root. tests/compile_test.ts checks that every module imported by a computed specifier is listed.
 */
export const COMPILE_INCLUDES = [
  // Read at run time from next to the source: the AssemblyScript SDK (compiled into user functions), the container
  // helper (prebuilt binary and its C source, whose hash names the binary) and the workers (executor, watchdog).
  "sdk/assemblyscript",
  "runtime/container/helper",
  "runtime/wasm/executor_worker.ts",
  "runtime/wasm/watchdog_worker.ts",
  // Imported by computed specifiers (main.ts says why): the CLI, the helper child and its roles, the node, and the
  // parts of the node only a cloud's shapes run.
  "cli/main.ts",
  "runtime/helper/child.ts",
  "runtime/wasm/build_helper.ts",
  "runtime/schema/parse_helper.ts",
  "services/node.ts",
  "services/cluster/cluster.ts",
  "services/cluster/state.ts",
  "services/git/replicate.ts",
  "services/patrick/cluster.ts",
  "services/gateway/forward.ts",
  "services/seer/seer.ts",
  "services/commands/remote.ts",
  "services/pubsub/transport.ts",
];
