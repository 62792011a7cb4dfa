/** Where a resource's code lives in the code repo; the scaffolder uses this, and it matches the build's lookup. */
import { resolveByName } from "./references.ts";
import type { FunctionResource, LibraryResource, ProjectConfig, WebsiteResource } from "./types.ts";

const FOLDER = { function: "functions", website: "websites", library: "libraries" } as const;

/**
 * Folder of the code repo (relative, "/" separated) holding the resource's code. Source "." means the resource's
 * own folder: <folder>/<name>, or applications/<app>/<folder>/<name> for an application resource. A function with
 * `source: libraries/<lib>` uses that library's folder (the application's library first when `config` is given);
 * any other source is already a folder of the code repo.
 */
export function codeDirOf(r: FunctionResource | WebsiteResource | LibraryResource, config?: ProjectConfig): string {
  const scope = r.app !== undefined ? `applications/${r.app}/` : "";
  if (r.source === "." || r.source === "") return `${scope}${FOLDER[r.kind]}/${r.name}`;
  const lib = r.kind === "function" ? r.source.match(/^libraries\/([^/]+)\/?$/)?.[1] : undefined;
  if (lib !== undefined) {
    const library = config ? resolveByName(config.libraries, "library", r.app, lib) : undefined;
    return library ? codeDirOf(library) : `libraries/${lib}`;
  }
  return r.source.replace(/^\.\//, "").replace(/\/+$/, "");
}
