/** Value checks shared by several resource types. Each returns the problem as a sentence tail, or undefined. */
import safeRegex from "safe-regex2";
import { nameProblem, type Path, pathText, type ReadContext, type RefKind } from "./fields.ts";

export const HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

export function normaliseMethod(v: string): string {
  const up = v.trim().toUpperCase();
  return up === "ANY" ? "*" : up;
}

/** Route path for a function: "/ping", "/users/:id", "/files/*" (wildcard only as the last segment). */
export function routePathProblem(p: string, allowPatterns: boolean): string | undefined {
  if (!p.startsWith("/")) return `'${p}' must start with "/", e.g. /${p.replace(/^\/*/, "")}`;
  if (/[\s?#]/.test(p)) return `'${p}' must not contain spaces, "?" or "#"`;
  if (p.includes("//")) return `'${p}' has an empty segment ("//")`;
  const segments = p.split("/").slice(1);
  for (const [i, seg] of segments.entries()) {
    if (seg.startsWith(":") || seg.includes("*")) {
      if (!allowPatterns) return `'${p}': website paths are plain prefixes, without :params or *`;
      if (seg === "*") {
        if (i !== segments.length - 1) return `'${p}': "*" is only allowed as the last segment`;
      } else if (seg.includes("*")) {
        return `'${p}': "*" must be a whole segment, e.g. /files/*`;
      } else if (!/^:[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) {
        return `'${p}': parameter '${seg}' must look like :id`;
      }
    }
  }
  return undefined;
}

/** List item reader for path prefixes (websites, containers): plain paths, no :params or *. */
export function prefixPathItem(v: string, path: Path, ctx: ReadContext): string | undefined {
  const problem = routePathProblem(v, false);
  if (problem) ctx.issue(path, `${pathText(path)} ${problem}`);
  return problem ? undefined : v;
}

/** Lowercase DNS name: labels of a-z, 0-9 and inner dashes, at most 63 characters each, 253 in total. */
export function fqdnProblem(fqdn: string): string | undefined {
  if (fqdn !== fqdn.toLowerCase()) return `'${fqdn}' must be lowercase: ${fqdn.toLowerCase()}`;
  if (fqdn.endsWith(".")) return `'${fqdn}' must not end with a dot: ${fqdn.replace(/\.+$/, "")}`;
  if (fqdn.length > 253) return `'${fqdn}' is longer than 253 characters`;
  for (const label of fqdn.split(".")) {
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) {
      return `'${fqdn}' is not a valid DNS name (label '${label}'), e.g. api.hello.localtau`;
    }
  }
  return undefined;
}

/** A folder inside the code repo: relative, no "..". */
export function relativeFolderProblem(p: string): string | undefined {
  if (p.startsWith("/") || /^[a-z]+:/i.test(p)) return `'${p}' must be a folder relative to the code repo`;
  if (p.split("/").includes("..")) return `'${p}' must not contain ".."`;
  return undefined;
}

/** A by-name reference (e.g. trigger.domains entries): valid name, recorded for resolution. */
export function refItem(kind: RefKind) {
  return (v: string, path: Path, ctx: ReadContext): string | undefined => {
    const problem = nameProblem(v, `${kind} name`);
    if (problem) {
      ctx.issue(path, problem);
      return undefined;
    }
    ctx.ref(kind, v, path);
    return v;
  };
}

/** Exported symbol a function calls: an identifier. */
export function symbolProblem(v: string): string | undefined {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(v) ? undefined : `'${v}' is not an exported symbol name, e.g. ping`;
}

/**
 * A tag; "smartops:<name>" attaches the smartop <name> to the resource (Taubyte's rule), so it must name one that
 * exists (resolved like every reference: the application first, then the project).
 */
export function smartopsTagItem(v: string, path: Path, ctx: ReadContext): string | undefined {
  if (!v.startsWith("smartops:")) return v;
  const name = v.slice("smartops:".length);
  const problem = nameProblem(name, "smartop name");
  if (problem) {
    ctx.issue(path, `${pathText(path)} ${problem}`);
    return undefined;
  }
  ctx.ref("smartops", name, path);
  return v;
}

/**
 * A regular expression a resource matches names with (databases, storages, messaging channels). The node runs it on
 * the serving thread, unmetered, against names its functions open: one that can backtrack exponentially (nested
 * repetition, `(a+)+`) would stall every tenant, so it is refused like one that does not compile.
 */
export function regexProblem(v: string): string | undefined {
  try {
    new RegExp(v);
  } catch (err) {
    return `'${v}' is not a regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, "")}`;
  }
  if (!safeRegex(v)) {
    return `'${v}' can take exponential time (a repetition inside a repetition, like (a+)+): write it without nesting`;
  }
  return undefined;
}
