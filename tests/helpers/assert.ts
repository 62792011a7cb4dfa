// The project's test assertions, in one place: JSR's @std/assert is not reachable here.
import { AssertionError } from "node:assert";

function fail(message: string | undefined, what: string): never {
  throw new AssertionError({ message: message ? `${message}: ${what}` : what });
}

export function assert(value: unknown, message?: string): asserts value {
  if (!value) fail(message, "expected a truthy value");
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(message, `expected ${e}, got ${a}`);
}

export function assertStringIncludes(actual: string | undefined, expected: string, message?: string): void {
  if (!actual?.includes(expected)) {
    fail(message, `expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`);
  }
}

export function assertMatch(actual: string, re: RegExp, message?: string): void {
  if (!re.test(actual)) fail(message, `expected ${JSON.stringify(actual)} to match ${re}`);
}

/** `fn` must reject; the error must match `check` (a RegExp on its message, or a function that asserts). */
export async function assertRejects(
  fn: () => Promise<unknown>,
  check: RegExp | ((e: unknown) => void),
): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    if (check instanceof RegExp) assertMatch((err as Error).message, check, "wrong error");
    else check(err);
    return err as Error;
  }
  fail(undefined, "expected a rejection");
}
