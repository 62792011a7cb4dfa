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
