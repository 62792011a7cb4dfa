/**
 * Stable ids for resources whose YAML leaves `id` empty. Derived from what identifies the resource (project, scope,
 * type, name) so rebuilding the same config always yields the same id, and `tau new` writes the very id a
 * rebuild would derive.
 */
import { createHash } from "node:crypto";

export function stableId(...parts: string[]): string {
  // Synchronous hash (parseProjectConfig is synchronous); 32 hex characters is plenty for uniqueness in a project.
  return createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 32);
}

export function projectId(projectName: string): string {
  return stableId("project", projectName);
}

/** `app` is undefined for project-scope resources. */
export function resourceId(projectId: string, app: string | undefined, kind: string, name: string): string {
  return stableId(projectId, app ?? "", kind, name);
}
