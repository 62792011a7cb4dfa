// A function may ask for more than the node allows (Taubyte's configs do: 1h15m, 64GB); the build runs it with the
// node's limits and says so in its log, once per clamped limit.
import { assertEquals } from "../../tests/helpers/assert.ts";
import { NODE_EXECUTION_LIMITS, withNodeLimits } from "./functions.ts";
import { parseProjectConfig } from "../../runtime/schema/mod.ts";

const config = (execution: string) =>
  parseProjectConfig({
    "config.yaml": "name: p\n",
    "domains/d.yaml": "fqdn: d.test\n",
    "functions/f.yaml": `trigger: {type: https, paths: [/f], domains: [d]}\nexecution: ${execution}\n`,
  }).config!.functions[0];

Deno.test("limits above the node's are clamped with a warning in the build log; others are kept as asked", () => {
  const log: string[] = [];
  const big = withNodeLimits(config("{timeout: 1h15m, memory: 64GB}"), (l) => log.push(l));
  assertEquals(big.execution.timeoutMs, NODE_EXECUTION_LIMITS.timeoutMs);
  assertEquals(big.execution.memoryBytes, NODE_EXECUTION_LIMITS.memoryBytes);
  assertEquals(log, [
    "warning: function f: execution.timeout 1h15m is above what this node allows; it runs with 5m",
    "warning: function f: execution.memory 64GB is above what this node allows; it runs with 4GiB",
  ]);
  const small = config("{timeout: 20s, memory: 32MB}");
  const kept: string[] = [];
  assertEquals(withNodeLimits(small, (l) => kept.push(l)), small);
  assertEquals(kept, []);
});
