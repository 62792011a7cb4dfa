/**
 * Cron schedules as a function's `trigger.schedule` writes them: the standard five fields (minute hour day-of-month
 * month day-of-week: `*`, lists `1,15`, ranges `1-5`, steps `*\/15` and `10-50/20`, names JAN-DEC and SUN-SAT, 7 also
 * Sunday), the shorthands @yearly @annually @monthly @weekly @daily @midnight @hourly, and `@every <duration>` (at
 * least 1s, e.g. `@every 30s`, `@every 1m30s`). Times are UTC: every node of a cloud computes the same ticks whatever
 * its local zone. A tick is a time in ms since the epoch; `next(after)` is the first tick strictly after `after`.
 * Parsing throws an Error whose message is safe to show (the schema reports it with the file and line).
 */
import { parseDuration } from "../schema/units.ts";

export interface Schedule {
  /** The text it was parsed from. */
  readonly text: string;
  /** The first tick strictly after `after` (ms since the epoch); Infinity when there is none (Feb 30). */
  next(after: number): number;
}

/** `@every` runs at multiples of its period since the epoch: every node agrees on the ticks without talking. */
export const MIN_EVERY_MS = 1000;

const SHORTHANDS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  /** Names for values, from `min` on. */
  names?: string[];
}

const FIELDS: FieldSpec[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS },
  // 7 is Sunday too (as in most crons); folded onto 0 after parsing.
  { name: "day of week", min: 0, max: 7, names: DAYS },
];

export function parseSchedule(input: string): Schedule {
  const text = input.trim();
  if (!text) throw new Error("is empty: use five cron fields, e.g. '*/5 * * * *', or '@every 30s'");
  if (text.startsWith("@every")) return every(text);
  if (text.startsWith("@")) {
    const expanded = SHORTHANDS[text.toLowerCase()];
    if (!expanded) {
      throw new Error(
        `'${text}' is not a schedule: the shorthands are ${Object.keys(SHORTHANDS).join(", ")} and @every`,
      );
    }
    return fields(text, expanded);
  }
  return fields(text, text);
}

function every(text: string): Schedule {
  const arg = text.slice("@every".length).trim();
  if (!arg) throw new Error(`'${text}' names no period: use e.g. '@every 30s'`);
  let period: number;
  try {
    period = parseDuration(arg);
  } catch {
    throw new Error(`'${text}': '${arg}' is not a duration: use e.g. '@every 30s', '@every 5m', '@every 1h'`);
  }
  if (!/[a-z]/i.test(arg) || period < MIN_EVERY_MS) {
    throw new Error(`'${text}': the period must be at least 1s, with a unit (e.g. '@every 1s')`);
  }
  return { text, next: (after) => (Math.floor(after / period) + 1) * period };
}

function fields(text: string, spec: string): Schedule {
  const parts = spec.split(/\s+/);
  if (parts.length !== 5) {
    throw new Error(
      `'${text}' has ${parts.length} field${parts.length === 1 ? "" : "s"}: a schedule has five ` +
        "(minute hour day-of-month month day-of-week, e.g. '0 9 * * MON-FRI'), or is '@every 30s'",
    );
  }
  const sets = parts.map((p, i) => field(p, FIELDS[i], text));
  const [minutes, hours, days, months, weekdays] = sets;
  if (weekdays.has(7)) weekdays.add(0);
  // Classic cron: when both day fields are restricted, a day matches either of them.
  const domAny = parts[2] === "*" || parts[2] === "?";
  const dowAny = parts[4] === "*" || parts[4] === "?";
  const dayMatches = (d: Date) => {
    const dom = days.has(d.getUTCDate());
    const dow = weekdays.has(d.getUTCDay());
    if (domAny && dowAny) return true;
    if (domAny) return dow;
    if (dowAny) return dom;
    return dom || dow;
  };
  const minuteList = [...minutes].sort((a, b) => a - b);
  const hourList = [...hours].sort((a, b) => a - b);
  return {
    text,
    next(after: number): number {
      // Start at the next whole minute, then walk day by day (at most ~8 years: then there is no such date).
      const start = new Date((Math.floor(after / 60_000) + 1) * 60_000);
      let day = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
      for (let i = 0; i < 366 * 8; i++, day += 86_400_000) {
        const d = new Date(day);
        if (!months.has(d.getUTCMonth() + 1) || !dayMatches(d)) continue;
        for (const h of hourList) {
          for (const m of minuteList) {
            const t = day + h * 3_600_000 + m * 60_000;
            if (t > after) return t;
          }
        }
      }
      return Infinity;
    },
  };
}

function field(part: string, spec: FieldSpec, text: string): Set<number> {
  const out = new Set<number>();
  const where = `'${text}': the ${spec.name} field '${part}'`;
  for (const item of part.split(",")) {
    const [range, stepText, extra] = item.split("/");
    if (extra !== undefined || !range) throw new Error(`${where} is not a value, range or step`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) {
        throw new Error(`${where}: the step must be a number >= 1`);
      }
      step = Number(stepText);
    }
    let lo: number, hi: number;
    if (range === "*" || range === "?") [lo, hi] = [spec.min, spec.name === "day of week" ? 6 : spec.max];
    else {
      const ends = range.split("-");
      if (ends.length > 2) throw new Error(`${where} is not a value, range or step`);
      lo = value(ends[0], spec, where);
      hi = ends.length === 2 ? value(ends[1], spec, where) : stepText !== undefined ? spec.max : lo;
      if (hi < lo) throw new Error(`${where}: the range runs backwards (${ends[0]} is after ${ends[1]})`);
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

function value(word: string, spec: FieldSpec, where: string): number {
  const named = spec.names?.indexOf(word.toUpperCase()) ?? -1;
  if (named >= 0) return named + (spec.name === "month" ? 1 : 0);
  if (!/^\d+$/.test(word)) {
    const names = spec.names ? ` or ${spec.names[0]}-${spec.names[spec.names.length - 1]}` : "";
    throw new Error(`${where}: '${word}' is not a number${names}`);
  }
  const n = Number(word);
  if (n < spec.min || n > spec.max) {
    throw new Error(`${where}: ${n} is outside ${spec.min}-${spec.max}`);
  }
  return n;
}

/**
 * The ticks of `schedule` in (after, until], oldest first, at most `max` of them (the newest ones when there are
 * more): what a node with `catchup` runs for the ticks nobody ran.
 */
export function ticksBetween(schedule: Schedule, after: number, until: number, max: number): number[] {
  const out: number[] = [];
  for (let t = schedule.next(after); t <= until; t = schedule.next(t)) {
    out.push(t);
    if (out.length > max) out.shift();
  }
  return out;
}
