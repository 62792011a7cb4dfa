/**
 * The project config schema: one set of declarations (kinds.ts) drives parsing, validation, the TNS route table
 * and `tau new` scaffolding. See docs/config-schema.md for the file format.
 */
export type {
  AnyResource,
  ApplicationInfo,
  ConfigIssue,
  DatabaseResource,
  DomainResource,
  FunctionResource,
  LibraryResource,
  MessagingResource,
  ParseResult,
  ProjectConfig,
  ResourceKind,
  RouteEntry,
  ServiceResource,
  SmartopsResource,
  StorageResource,
  WebsiteResource,
} from "./types.ts";
export { parseProjectConfig } from "./parse.ts";
export { assertValid, formatIssue, loadProjectConfig } from "./load.ts";
export { routesOf } from "./routes.ts";
export { resolveByName } from "./references.ts";
export { formatDuration, formatSize, parseDuration, parseSize } from "./units.ts";
export { codeDirOf } from "./code_dir.ts";
export { addResource, findProjectDir, type ScaffoldKind } from "./scaffold.ts";
export { KINDS } from "./kinds.ts";
