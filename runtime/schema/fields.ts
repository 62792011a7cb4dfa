/**
 * Field building blocks for the schema. A resource type is a tree of these (see kinds.ts); one tree drives reading
 * YAML, defaults, validation messages, reference collection and the docs, so no rule is written twice.
 */
import { formatDuration, formatSize, parseDuration, parseSize } from "./units.ts";

export type Path = (string | number)[];
export type RefKind = "domain" | "library" | "smartops";

export interface ReadContext {
  /** Name of the resource being read: some defaults derive from it (execution.call). */
  name: string;
  issue(path: Path, message: string): void;
  /** Something accepted that tau does not (fully) act on: printed, never an error. */
  warn(path: Path, message: string): void;
  /** Records a by-name reference; references.ts checks that it resolves once every file is read. */
  ref(kind: RefKind, name: string, path: Path): void;
}

export interface Field<T = unknown> {
  doc: string;
  /** Example value shown when the field is missing; a required field has no default. */
  required?: string;
  defaultValue?: (ctx: ReadContext) => T;
  /** How the default reads in docs, when JSON of defaultValue would not do ("10s", "the name"). */
  defaultText?: string;
  read(raw: unknown, path: Path, ctx: ReadContext): T | undefined;
}

export interface Group {
  doc: string;
  fields: Shape;
}

export type Shape = { [key: string]: Field | Group };

/** What readShape returns: values already checked against the shape, so callers may read them freely. */
// deno-lint-ignore no-explicit-any
export type Values = Record<string, any>;

/** Taubyte's rule for resource names: a letter or "_" first, then letters, digits and "_" ("PingUpper" is valid). */
export const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A tau project's name (not a resource's): it becomes a path in git URLs, a KV key and a DNS label, so it is
 * lowercase snake_case.
 */
export const PROJECT_NAME_RE = /^[a-z][a-z0-9_]*$/;

/** "trigger.paths[1]" */
export function pathText(path: Path): string {
  return path.map((p, i) => typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`).join("");
}

/** Why a name is invalid, or undefined when it is fine. */
export function nameProblem(name: string, what = "name"): string | undefined {
  if (NAME_RE.test(name)) return undefined;
  const suggestion = name.replace(/[^A-Za-z0-9_]+/g, "_").replace(/^[^A-Za-z_]+/, "");
  const eg = suggestion && NAME_RE.test(suggestion) ? `, e.g. ${suggestion}` : "";
  return `invalid ${what} '${name}': start with a letter or _, then letters, digits or _${eg}`;
}

export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isGroup(f: Field | Group): f is Group {
  return "fields" in f;
}

function show(v: unknown): string {
  return typeof v === "string" ? `'${v}'` : JSON.stringify(v);
}

function closest(word: string, options: string[]): string | undefined {
  // Plain edit distance: typos in keys ("triger", "domain") are the commonest config mistake.
  let best: string | undefined;
  let bestD = 3;
  for (const o of options) {
    const d = editDistance(word, o);
    // Short words are a few edits from anything: only suggest when most of the word survives.
    if (d < bestD && d * 2 < word.length) [best, bestD] = [o, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/**
 * Reads a mapping against a shape: reports unknown keys (unless `loose`), missing required fields and bad values,
 * fills defaults. Returns undefined only when `raw` is not a mapping at all.
 */
export function readShape(
  shape: Shape,
  raw: unknown,
  path: Path,
  ctx: ReadContext,
  loose = false,
): Values | undefined {
  if (raw === undefined || raw === null) raw = {};
  if (!isMapping(raw)) {
    ctx.issue(
      path,
      `${path.length ? pathText(path) : "the file"} must be a mapping of keys to values, got ${show(raw)}`,
    );
    return undefined;
  }
  const out: Values = {};
  const known = Object.keys(shape);
  for (const key of Object.keys(raw)) {
    if (key in shape || loose) continue;
    const guess = closest(key, known);
    const where = path.length ? ` in ${pathText(path)}` : "";
    ctx.issue(
      [...path, key],
      `unknown key '${key}'${where}` + (guess ? `: did you mean '${guess}'?` : ` (known: ${known.join(", ")})`),
    );
  }
  for (const [key, spec] of Object.entries(shape)) {
    const value = raw[key];
    const at = [...path, key];
    if (isGroup(spec)) {
      out[key] = readShape(spec.fields, value, at, ctx) ?? readShape(spec.fields, {}, at, silent(ctx));
    } else if (value === undefined || value === null) {
      if (spec.required !== undefined) ctx.issue(at, `${pathText(at)} is required, e.g. ${spec.required}`);
      out[key] = spec.defaultValue?.(ctx);
    } else {
      out[key] = spec.read(value, at, ctx) ?? spec.defaultValue?.(ctx);
    }
  }
  if (loose) { for (const key of Object.keys(raw)) if (!(key in shape)) out[key] = raw[key]; }
  return out;
}

function silent(ctx: ReadContext): ReadContext {
  return { name: ctx.name, issue: () => {}, warn: () => {}, ref: () => {} };
}

// ---- field constructors ----

export function text(doc: string, def = "", check?: (v: string) => string | undefined): Field<string> {
  return {
    doc,
    defaultValue: () => def,
    read(raw, path, ctx) {
      if (typeof raw !== "string") {
        // Numbers and booleans are almost always meant as text ("description: 42"); say so instead of guessing.
        ctx.issue(path, `${pathText(path)} must be text, got ${show(raw)}: quote it`);
        return undefined;
      }
      const problem = check?.(raw);
      if (problem) ctx.issue(path, `${pathText(path)} ${problem}`);
      return problem ? undefined : raw;
    },
  };
}

/** Like text() but the default is computed from the resource (e.g. `call` defaults to the resource name). */
export function derivedText(
  doc: string,
  def: (ctx: ReadContext) => string,
  check?: (v: string) => string | undefined,
): Field<string> {
  return { ...text(doc, "", check), defaultValue: def, defaultText: "the resource name" };
}

export function requiredText(doc: string, example: string, check?: (v: string) => string | undefined): Field<string> {
  return { ...text(doc, "", check), required: example };
}

/** A list of strings; a single string is accepted as a one-item list. `item` may normalise or reject each entry. */
export function list(
  doc: string,
  opts: {
    required?: string;
    def?: string[];
    item?: (v: string, path: Path, ctx: ReadContext) => string | undefined;
    unique?: boolean;
  } = {},
): Field<string[]> {
  return {
    doc,
    required: opts.required,
    defaultValue: () => [...(opts.def ?? [])],
    read(raw, path, ctx) {
      const items = typeof raw === "string" ? [raw] : raw;
      if (!Array.isArray(items)) {
        ctx.issue(path, `${pathText(path)} must be a list, e.g. [a, b], got ${show(raw)}`);
        return undefined;
      }
      const out: string[] = [];
      const seen = new Set<string>(); // not out.includes: that made a 1 MiB list of tags take ~10 s to check
      items.forEach((v, i) => {
        const at = typeof raw === "string" ? path : [...path, i];
        if (typeof v !== "string" && typeof v !== "number") {
          ctx.issue(at, `${pathText(at)} must be text, got ${show(v)}`);
          return;
        }
        const value = opts.item ? opts.item(String(v), at, ctx) : String(v);
        if (value === undefined) return;
        if (opts.unique && seen.has(value)) ctx.issue(at, `${pathText(at)} ${show(value)} is listed twice`);
        else {
          out.push(value);
          seen.add(value);
        }
      });
      if (opts.required !== undefined && out.length === 0 && items.length === 0) {
        ctx.issue(path, `${pathText(path)} must not be empty, e.g. ${opts.required}`);
      }
      return out;
    },
  };
}

export function bool(doc: string, def = false): Field<boolean> {
  return {
    doc,
    defaultValue: () => def,
    read(raw, path, ctx) {
      if (typeof raw === "boolean") return raw;
      ctx.issue(path, `${pathText(path)} must be true or false, got ${show(raw)}`);
      return undefined;
    },
  };
}

/** One of a fixed set of words, compared case-insensitively; `normalise` maps aliases ("ANY" -> "*"). */
export function choice(
  doc: string,
  values: string[],
  def: string,
  opts: { what?: string; normalise?: (v: string) => string } = {},
): Field<string> {
  return {
    doc,
    defaultValue: () => def,
    read(raw, path, ctx) {
      const v = typeof raw === "string" ? (opts.normalise ? opts.normalise(raw) : raw.toLowerCase()) : undefined;
      if (v !== undefined && values.includes(v)) return v;
      const what = opts.what ?? `one of ${values.join(", ")}`;
      ctx.issue(path, `${pathText(path)} ${show(raw)} is not ${what}`);
      return undefined;
    },
  };
}

function measured(
  doc: string,
  def: string | undefined,
  parse: (v: string | number) => number,
  format: (n: number) => string,
  limits: { min?: number; max?: number; eg: string },
): Field<number> {
  return {
    doc,
    defaultValue: def === undefined ? undefined : () => parse(def),
    defaultText: def,
    read(raw, path, ctx) {
      // A bare number has no unit and is ambiguous to a reader ("timeout: 10"): ask for the unit instead.
      if (typeof raw === "number" && raw !== 0) {
        ctx.issue(path, `${pathText(path)} ${raw} has no unit: write e.g. ${limits.eg}`);
        return undefined;
      }
      if (typeof raw !== "string" && typeof raw !== "number") {
        ctx.issue(path, `${pathText(path)} must be text like ${limits.eg}, got ${show(raw)}`);
        return undefined;
      }
      let n: number;
      try {
        n = parse(raw);
      } catch (err) {
        ctx.issue(path, `${pathText(path)} ${(err as Error).message}`);
        return undefined;
      }
      if (limits.min !== undefined && n < limits.min) {
        ctx.issue(path, `${pathText(path)} ${show(raw)} is below the minimum of ${format(limits.min)}`);
        return undefined;
      }
      if (limits.max !== undefined && n > limits.max) {
        ctx.issue(path, `${pathText(path)} ${show(raw)} is above the maximum of ${format(limits.max)}`);
        return undefined;
      }
      return n;
    },
  };
}

export function duration(doc: string, def?: string, limits: { min?: number; max?: number } = {}): Field<number> {
  return measured(doc, def, parseDuration, formatDuration, { ...limits, eg: "10s or 500ms" });
}

export function size(doc: string, def?: string, limits: { min?: number; max?: number } = {}): Field<number> {
  return measured(doc, def, parseSize, formatSize, { ...limits, eg: "16MB or 64KB" });
}

/** Any YAML value, carried as-is (loosely validated resource types). */
export function anything(doc: string): Field<unknown> {
  return { doc, read: (raw) => raw };
}
