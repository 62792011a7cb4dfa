/** Cross-file checks: every by-name reference (domains, libraries) resolves, application scope first. */
import type { ParsedResource, Report } from "./parse.ts";
import type { AnyResource } from "./types.ts";
import { pathText } from "./fields.ts";

const FOLDER = { domain: "domains", library: "libraries", smartops: "smartops" } as const;

/** The resource `name` of `kind` visible from `app` (its own application first, then the project). */
export function resolveByName<T extends AnyResource>(
  all: readonly T[],
  kind: T["kind"],
  app: string | undefined,
  name: string,
): T | undefined {
  const inScope = (r: T, scope: string | undefined) => r.kind === kind && r.name === name && r.app === scope;
  return (app !== undefined ? all.find((r) => inScope(r, app)) : undefined) ?? all.find((r) => inScope(r, undefined));
}

export function checkReferences(parsed: ParsedResource[], report: Report): void {
  const all = parsed.map((p) => p.resource);
  for (const { resource, refs, lineOf } of parsed) {
    for (const ref of refs) {
      if (resolveByName(all, ref.kind, resource.app, ref.name)) continue;
      const folder = FOLDER[ref.kind];
      const where = resource.app !== undefined ? `applications/${resource.app}/${folder}/ or ${folder}/` : `${folder}/`;
      const create = ref.kind === "domain"
        ? `tau new domain ${ref.name} --fqdn <host>`
        : ref.kind === "library"
        ? `tau new library ${ref.name}`
        : `add ${folder}/${ref.name}.yaml`;
      report(
        resource.file,
        ref.path,
        `${pathText(ref.path)}: ${ref.kind} '${ref.name}' does not exist in ${where} (create it: ${create})`,
        lineOf,
      );
    }
  }
}
