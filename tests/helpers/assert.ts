// Small assertion helpers: JSR's @std/assert is not reachable here, and node:assert reads less clearly in Deno tests.
import { AssertionError } from "node:assert";

export function assert(value: unknown, message = "expected a truthy value"): asserts value {
  if (!value) throw new AssertionError({ message });
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new AssertionError({ message: `${message ? message + ": " : ""}expected ${e}, got ${a}` });
}

export function assertStringIncludes(actual: string | undefined, expected: string, message?: string): void {
  if (!actual?.includes(expected)) {
    throw new AssertionError({
      message: `${message ? message + ": " : ""}expected ${JSON.stringify(actual)} to include ${
        JSON.stringify(expected)
      }`,
    });
  }
}

export function assertMatch(actual: string, re: RegExp): void {
  if (!re.test(actual)) throw new AssertionError({ message: `expected ${JSON.stringify(actual)} to match ${re}` });
}
