import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { parseSchedule, ticksBetween } from "./cron.ts";

const at = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString().replace(".000", "");

function nexts(schedule: string, from: string, n: number): string[] {
  const s = parseSchedule(schedule);
  const out: string[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) out.push(iso(t = s.next(t)));
  return out;
}

Deno.test("cron: five fields with lists, ranges, steps and names, in UTC", () => {
  assertEquals(nexts("*/15 * * * *", "2026-01-01T00:07:30Z", 3), [
    "2026-01-01T00:15:00Z",
    "2026-01-01T00:30:00Z",
    "2026-01-01T00:45:00Z",
  ]);
  assertEquals(nexts("0 9 * * MON-FRI", "2026-01-02T10:00:00Z", 2), ["2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z"]);
  assertEquals(nexts("30 1,13 1 JAN,jul *", "2026-01-01T02:00:00Z", 2), [
    "2026-01-01T13:30:00Z",
    "2026-07-01T01:30:00Z",
  ]);
  assertEquals(nexts("10-50/20 0 * * *", "2026-03-01T00:00:00Z", 3), [
    "2026-03-01T00:10:00Z",
    "2026-03-01T00:30:00Z",
    "2026-03-01T00:50:00Z",
  ]);
  // 7 is Sunday as well as 0; both day fields restricted: either matches (classic cron).
  assertEquals(nexts("0 0 * * 7", "2026-01-01T00:00:00Z", 1), ["2026-01-04T00:00:00Z"]);
  assertEquals(nexts("0 0 13 * FRI", "2026-02-01T00:00:00Z", 2), ["2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z"]);
  assertEquals(nexts("0 0 29 2 *", "2026-01-01T00:00:00Z", 1), ["2028-02-29T00:00:00Z"]);
  assertEquals(parseSchedule("0 0 30 2 *").next(at("2026-01-01T00:00:00Z")), Infinity);
});

Deno.test("cron: @every and the shorthands", () => {
  assertEquals(nexts("@every 30s", "2026-01-01T00:00:10Z", 2), ["2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z"]);
  assertEquals(nexts("@every 1m30s", "2026-01-01T00:00:00Z", 1), ["2026-01-01T00:01:30Z"]);
  assertEquals(nexts("@hourly", "2026-01-01T00:00:00Z", 1), ["2026-01-01T01:00:00Z"]);
  assertEquals(nexts("@daily", "2026-01-01T00:00:00Z", 1), ["2026-01-02T00:00:00Z"]);
  const s = parseSchedule("@every 1s");
  assertEquals(ticksBetween(s, 1_000, 5_500, 100), [2_000, 3_000, 4_000, 5_000]);
  assertEquals(ticksBetween(s, 1_000, 5_500, 2), [4_000, 5_000], "the newest ones within the bound");
});

Deno.test("cron: bad schedules say what is wrong", () => {
  const bad: [string, RegExp][] = [
    ["", /empty/],
    ["* * * *", /has 4 fields: a schedule has five/],
    ["60 * * * *", /minute field '60': 60 is outside 0-59/],
    ["* * * FOO *", /month field 'FOO': 'FOO' is not a number or JAN-DEC/],
    ["*/0 * * * *", /step must be a number >= 1/],
    ["5-1 * * * *", /runs backwards/],
    ["@every", /names no period/],
    ["@every 500ms", /at least 1s/],
    ["@every 5", /at least 1s, with a unit/],
    ["@every soon", /not a duration/],
    ["@sometimes", /not a schedule: the shorthands are/],
  ];
  for (const [text, message] of bad) {
    let error = "";
    try {
      parseSchedule(text);
    } catch (err) {
      error = (err as Error).message;
    }
    assertMatch(error, message, text);
  }
});
