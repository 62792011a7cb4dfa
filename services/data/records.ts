/**
 * What one function's data calls are bound to, and where the data lives in the user-data store (store.ts).
 *
 * Bindings are plain data taken from the deployment's config (databaseBindingsOf / storageBindingsOf), so a node
 * can bind a function without re-reading YAML, and a binding sent to an executor Worker survives structured clone.
 *
 * Key layout (scope = the resource's application name, "" for a project-level resource; `name` is the name the
 * function opened, so one regex resource serves many databases, each with its own size):
 *   ["userdata", "db", project, scope, name, key]                   -> Uint8Array     a database entry
 *   ["userdata", "dbsize", project, scope, name]                    -> Usage          bytes the database holds
 *   ["userdata", "storage", project, scope, name, "file", file]     -> FileRecord     a storage file's versions
 *   ["userdata", "storagesize", project, scope, name]               -> Usage          bytes the storage holds
 *   ["userdata", "global", project, app or "", function id or "", name] -> Uint8Array
 *   ["hoarder", "objects", cid, ...ref]                             -> ObjectPin      (services/hoarder/pins.ts)
 */
import type { Key } from "../kvdb/mod.ts";
import type { DatabaseResource, ProjectConfig, StorageResource } from "../../runtime/schema/types.ts";

export interface DatabaseBinding {
  /** The resource's name (for messages). */
  name: string;
  /** Its application; absent for a project-level database. */
  app?: string;
  id: string;
  /** The database name it serves, or a regular expression over names when `regex`. */
  match: string;
  regex: boolean;
  /** `storage.size`: the most one database name may hold (keys and values). */
  sizeBytes: number;
}

export interface StorageBinding {
  name: string;
  app?: string;
  id: string;
  match: string;
  regex: boolean;
  type: "object" | "streaming";
  /** Object storages: keep every version of a file (otherwise an add replaces the file). */
  versioning: boolean;
  /** Streaming storages: how long an added version lives. */
  ttlMs?: number;
  /** Capacity of one storage name: the sizes of every version it keeps. */
  sizeBytes: number;
}

/** The function being bound: who it is, and what its deployment declares. */
export interface FunctionData {
  project: string;
  /** The function's application; absent for a project-level function. */
  app?: string;
  /** The function's resource id (function-scoped globals). */
  functionId: string;
  databases: DatabaseBinding[];
  storages: StorageBinding[];
}

/** A counter entry: how many bytes a database or storage name holds. */
export interface Usage {
  bytes: number;
}

export interface FileVersion {
  v: number;
  cid: string;
  size: number;
  /** When it was added (ms). */
  at: number;
  /** Streaming storages: when it expires (ms). */
  exp?: number;
}

export interface FileRecord {
  /** Oldest first. */
  versions: FileVersion[];
  /** The version `get(..., 0)` reads. */
  current: number;
  /** The highest version number given so far: a deleted number is not given again while the file exists. */
  last: number;
}

export function databaseBindingsOf(config: ProjectConfig): DatabaseBinding[] {
  return config.databases.map((d: DatabaseResource) => ({
    name: d.name,
    ...(d.app ? { app: d.app } : {}),
    id: d.id,
    match: d.match,
    regex: d.regex,
    sizeBytes: d.sizeBytes,
  }));
}

export function storageBindingsOf(config: ProjectConfig): StorageBinding[] {
  return config.storages.map((s: StorageResource) => ({
    name: s.name,
    ...(s.app ? { app: s.app } : {}),
    id: s.id,
    match: s.match,
    regex: s.regex,
    type: s.type,
    versioning: s.type === "object" && (s.versioning ?? false),
    ...(s.type === "streaming" && s.ttlMs !== undefined ? { ttlMs: s.ttlMs } : {}),
    sizeBytes: s.sizeBytes,
  }));
}

/** Where one opened database or storage name lives: the function's project and the matched resource's scope. */
export interface Place {
  project: string;
  scope: string;
  name: string;
}

export const dbEntryKey = (p: Place, key: string): Key => ["userdata", "db", p.project, p.scope, p.name, key];
export const dbPrefix = (p: Place): Key => ["userdata", "db", p.project, p.scope, p.name];
export const dbSizeKey = (p: Place): Key => ["userdata", "dbsize", p.project, p.scope, p.name];
export const fileKey = (p: Place, file: string): Key => [
  "userdata",
  "storage",
  p.project,
  p.scope,
  p.name,
  "file",
  file,
];
export const filesPrefix = (p: Place): Key => ["userdata", "storage", p.project, p.scope, p.name, "file"];
export const storageSizeKey = (p: Place): Key => ["userdata", "storagesize", p.project, p.scope, p.name];
export const globalKey = (project: string, app: string, fn: string, name: string): Key => [
  "userdata",
  "global",
  project,
  app,
  fn,
  name,
];
