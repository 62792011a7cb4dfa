/** Minimal assertions (the standard library is not reachable here). */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg ?? "not equal"}:\n  actual:   ${a}\n  expected: ${e}`);
}

export function assertStringIncludes(actual: string, expected: string): void {
  if (!actual.includes(expected)) {
    throw new Error(`expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`);
  }
}

export async function assertRejects(fn: () => Promise<unknown>, check: (e: unknown) => void): Promise<void> {
  try {
    await fn();
  } catch (e) {
    check(e);
    return;
  }
  throw new Error("expected a rejection");
}
