/**
 * Edits of a cloud folder's YAML that keep the user's bytes: an entry is added by appending its rendered block, and
 * removed by cutting exactly its lines; everything else in the file (comments, blank lines, quoting, key order,
 * flow or block style) stays as the user wrote it. npm:yaml's Document gives the positions and renders the new block
 * in the file's own indentation. (Re-rendering the whole Document would move comments and respace flow maps.)
 */
import { Document, isMap, isPair, isScalar, type Node } from "yaml";
import { TauError } from "../../runtime/errors.ts";
import { type YamlFile } from "./folder.ts";

/** The file's indentation: the first indented key's depth, and whether list items sit deeper than their key. */
export function layoutOf(text: string): { indent: number; indentSeq: boolean } {
  const lines = text.split("\n").filter((l) => l.trim() && !l.trimStart().startsWith("#"));
  let indent = 2;
  const first = lines.find((l) => /^ +[^\s-]/.test(l));
  if (first) indent = first.length - first.trimStart().length;
  let indentSeq = true;
  for (let i = 1; i < lines.length; i++) {
    const item = lines[i].match(/^( *)- /);
    const key = lines[i - 1].match(/^( *)[^\s-][^:]*:\s*$/);
    if (item && key) {
      indentSeq = item[1].length > key[1].length;
      break;
    }
  }
  return { indent, indentSeq };
}

export function renderEntry(text: string, name: string, value: unknown, comment?: string): string {
  const doc = new Document({ [name]: value });
  if (comment && isMap(doc.contents)) (doc.contents.items[0].key as Node).commentBefore = comment;
  return doc.toString({ ...layoutOf(text), lineWidth: 0 });
}

function topPair(file: YamlFile, name: string) {
  if (!isMap(file.doc.contents)) return undefined;
  return file.doc.contents.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === name);
}

/** The text with a new top-level entry `name: value` at the end. */
export function addEntry(file: YamlFile, name: string, value: unknown, comment?: string): string {
  if (topPair(file, name)) throw new TauError(`${file.path}: ${name} already exists`);
  const contents = file.doc.contents as Node | null;
  const block = renderEntry(file.text, name, value, comment);
  if (!contents || (isScalar(contents) && contents.value === null)) {
    // Only comments (or nothing): the entry follows them.
    return file.text + (file.text && !file.text.endsWith("\n") ? "\n" : "") + block;
  }
  if (isMap(contents) && contents.flow) {
    if (contents.items.length) {
      throw new TauError(`${file.path}: is one flow map ({...}); tau adds entries to block maps only`, {
        hint: "write the file as a block map (one key per line) and run the command again",
      });
    }
    const [start, end] = contents.range!;
    return file.text.slice(0, start) + block.replace(/\n$/, "") + file.text.slice(end);
  }
  if (!isMap(contents)) throw new TauError(`${file.path}: is not a map of names`);
  return file.text + (file.text.endsWith("\n") ? "" : "\n") + block;
}

/** The text without the top-level entry `name`: its lines are cut, comments above it and around others stay. */
export function removeEntry(file: YamlFile, name: string): string {
  const pair = topPair(file, name);
  if (!pair) throw new TauError(`${file.path}: ${name} does not exist`);
  if (isMap(file.doc.contents) && file.doc.contents.flow) {
    throw new TauError(`${file.path}: is one flow map ({...}); tau removes entries from block maps only`, {
      hint: "write the file as a block map (one key per line) and run the command again",
    });
  }
  const text = file.text;
  const keyStart = (pair.key as Node).range![0];
  const start = text.lastIndexOf("\n", keyStart - 1) + 1;
  // The value's own end (not its trailing comments, which may introduce the next entry); then the rest of that line.
  const value = pair.value as Node | null;
  let end = value?.range ? value.range[1] : (pair.key as Node).range![2];
  while (end > start && /\s/.test(text[end - 1])) end--;
  const nl = text.indexOf("\n", end);
  end = nl === -1 ? text.length : nl + 1;
  // Indented comment lines right below belong to the entry's body.
  for (let m = text.slice(end).match(/^[ \t]+#[^\n]*(\n|$)/); m; m = text.slice(end).match(/^[ \t]+#[^\n]*(\n|$)/)) {
    end += m[0].length;
  }
  return text.slice(0, start) + text.slice(end);
}

const nest = (path: string[], value: unknown): unknown => path.reduceRight<unknown>((v, key) => ({ [key]: v }), value);

/** `block` (rendered at column 0) moved to `col`, without its final newline. */
const indentBlock = (block: string, col: number) =>
  block.replace(/\n$/, "").split("\n").map((l) => (l ? " ".repeat(col) + l : l)).join("\n");

/** Offset just past the line where `node` ends (its trailing blank space not counted). */
function endOfLine(text: string, offset: number): number {
  while (offset > 0 && /\s/.test(text[offset - 1])) offset--;
  const nl = text.indexOf("\n", offset);
  return nl === -1 ? text.length : nl + 1;
}

/**
 * The text with `value` at `path` (a path of map keys), everything else kept: a scalar replaces a scalar in place; a
 * map or list replaces the old value after its key's colon, rendered in the file's layout; a missing key is added at
 * the end of its map. This is how tau writes a node's key and id back under hosts.yaml's `<host>.shapes.<shape>`.
 */
export function setIn(file: YamlFile, path: string[], value: unknown): string {
  const text = file.text;
  const { indent } = layoutOf(text);
  const render = (v: unknown) => new Document(v).toString({ ...layoutOf(text), lineWidth: 0 });
  const column = (offset: number) => file.lines.linePos(offset).col - 1;
  let node = file.doc.contents as Node | null;
  if (!node || (isScalar(node) && node.value === null)) return addEntry(file, path[0], nest(path.slice(1), value));
  for (let i = 0; i < path.length; i++) {
    if (!isMap(node) || node.flow) {
      const where = node?.range ? `:${file.lines.linePos(node.range[0]).line}` : "";
      throw new TauError(`${file.path}${where}: tau writes only into block maps (one key per line)`, {
        hint: `write ${path.slice(0, i).join(".") || "the file"} as a block map and run the command again`,
      });
    }
    const map = node;
    const pair = map.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === path[i]);
    if (!pair) {
      if (i === 0) return addEntry(file, path[0], nest(path.slice(1), value));
      // After the map's last entry, at its column.
      const last = map.items[map.items.length - 1];
      const col = column((last.key as Node).range![0]);
      const lastEnd = (last.value as Node | null)?.range?.[1] ?? (last.key as Node).range![2];
      const at = endOfLine(text, lastEnd);
      const block = indentBlock(render(nest(path.slice(i), value)), col);
      return text.slice(0, at) + (at > 0 && text[at - 1] !== "\n" ? "\n" : "") + block + "\n" + text.slice(at);
    }
    const key = pair.key as Node;
    const old = pair.value as Node | null;
    const rest = path.slice(i + 1);
    const isEmpty = !old || (isScalar(old) && old.value === null) || (isMap(old) && old.flow && !old.items.length);
    const last = i === path.length - 1;
    if (last || isEmpty) {
      const v = last ? value : nest(rest, value);
      if (isScalar(old) && old.value !== null && (v === null || typeof v !== "object")) {
        const [s, e] = old.range!;
        return text.slice(0, s) + render(v).replace(/\n$/, "") + text.slice(e);
      }
      // After the key's colon: a block at one indent deeper than the key (or a flow scalar on the same line).
      const colon = text.indexOf(":", key.range![1]);
      const end = old?.range ? old.range[1] : colon + 1;
      const replacement = v !== null && typeof v === "object"
        ? "\n" + indentBlock(render(v), column(key.range![0]) + indent)
        : " " + render(v).replace(/\n$/, "");
      let e = end;
      while (e > colon + 1 && /\s/.test(text[e - 1])) e--;
      return text.slice(0, colon + 1) + replacement + text.slice(e);
    }
    node = old;
  }
  return text;
}
