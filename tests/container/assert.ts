/** Minimal assertions (jsr:@std/assert is not reachable from here). */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg ?? "not equal"}: expected ${e}, got ${a}`);
}

export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  if (!re.test(actual)) throw new Error(`${msg ?? "no match"}: ${re} against ${JSON.stringify(actual)}`);
}

export async function assertRejects(fn: () => Promise<unknown>, re: RegExp): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    const e = err as Error;
    assertMatch(e.message, re, "wrong error");
    return e;
  }
  throw new Error(`expected an error matching ${re}`);
}
