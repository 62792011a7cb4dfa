/**
 * A cloud folder (Spore Drive's format): cloud.yaml, hosts.yaml, auth.yaml, shapes.yaml and keys/, with the key names
 * of Taubyte's own example so a folder written for Taubyte loads here. Each file is kept as its text and npm:yaml
 * Document (with line positions): validation names the file and line of every problem, and edits (edit.ts) splice
 * the text so everything they do not touch stays byte for byte.
 */
import { join } from "node:path";
import { type Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { TauError } from "../../runtime/errors.ts";

export const FILES = ["cloud.yaml", "hosts.yaml", "auth.yaml", "shapes.yaml"] as const;
export type FileName = typeof FILES[number];

export interface YamlFile {
  name: FileName;
  path: string;
  text: string;
  doc: Document;
  lines: LineCounter;
  /** The first syntax error (the rest usually follow from it). */
  error?: { line?: number; message: string };
  /** The file as plain values; {} when empty or broken. */
  value: Record<string, unknown>;
}

export interface Folder {
  /** The folder as the user named it (what messages print). */
  dir: string;
  files: Partial<Record<FileName, YamlFile>>;
  /** Other entries tau keeps but does not read yet (accounts.yaml, tenancy.yaml, ...). */
  others: string[];
}

export type Path = (string | number)[];

export function parseFile(name: FileName, path: string, text: string): YamlFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  let error: YamlFile["error"];
  if (first) {
    error = {
      line: first.linePos?.[0]?.line ?? lines.linePos(first.pos[0]).line,
      message: first.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, ""),
    };
  }
  let value: Record<string, unknown> = {};
  if (!error) {
    try {
      const js = doc.toJS({ maxAliasCount: 100 });
      if (js !== null && js !== undefined) {
        if (typeof js !== "object" || Array.isArray(js)) {
          error = {
            line: 1,
            message: `${name} must be a map of names (it is a ${Array.isArray(js) ? "list" : "value"})`,
          };
        } else value = js as Record<string, unknown>;
      }
    } catch (err) {
      error = { line: undefined, message: `cannot read the YAML: ${(err as Error).message}` };
    }
  }
  return { name, path, text, doc, lines, error, value };
}

/** Line of the deepest existing node along `path` (the key itself when it exists). */
export function lineOf(file: YamlFile, path: Path): number | undefined {
  let node: unknown = file.doc.contents;
  let line: number | undefined;
  const at = (offset: number | undefined) => offset === undefined ? undefined : file.lines.linePos(offset).line;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      line = at((pair.key as Node).range?.[0]) ?? line;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number" && node.items[seg]) {
      node = node.items[seg];
      line = at((node as Node).range?.[0]) ?? line;
    } else break;
  }
  return line;
}

export async function loadFolder(dir: string): Promise<Folder> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (err) {
    throw new TauError(
      `cloud folder ${dir} ${err instanceof Deno.errors.NotFound ? "does not exist" : "cannot be read"}`,
      { hint: "create it with: tau drive init <cloud> --root-domain D --generated-domain G (or pass --dir)" },
    );
  }
  const files: Folder["files"] = {};
  const others: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if ((FILES as readonly string[]).includes(e.name) && e.isFile) {
      const name = e.name as FileName;
      const path = join(dir, name);
      files[name] = parseFile(name, path, await Deno.readTextFile(path));
    } else if (e.name !== "keys" && !e.name.startsWith(".")) others.push(e.isDirectory ? `${e.name}/` : e.name);
  }
  return { dir, files, others };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
