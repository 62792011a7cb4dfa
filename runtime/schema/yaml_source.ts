/** One YAML file parsed with positions, so issues can name the line of the offending key. */
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { Path } from "./fields.ts";

export interface YamlSource {
  /** Plain JS value (undefined when the file has syntax errors). */
  value: unknown;
  /** Syntax errors with their line. */
  errors: { line?: number; message: string }[];
  /** Line of the deepest existing node along `path` (the key itself when it exists). */
  lineOf(path: Path): number | undefined;
}

export function parseYaml(text: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const lineAt = (offset: number | undefined) => offset === undefined ? undefined : lineCounter.linePos(offset).line;
  const errors = doc.errors.map((e) => ({
    line: e.linePos?.[0]?.line ?? lineAt(e.pos[0]),
    // The parser's message ends with " at line N, column M:" and a code excerpt; we print the line ourselves.
    message: e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, ""),
  }));
  let value: unknown;
  if (!errors.length) {
    try {
      value = doc.toJS();
    } catch (err) {
      // The parser's guard against alias bombs (a few lines that expand to millions of nodes) throws here; it is a
      // problem of this file like any syntax error, so it is reported as one (parse.ts names the file).
      const message = err instanceof ReferenceError && /alias/i.test(err.message)
        ? "too many alias references (*name): a YAML alias bomb? expand the aliases or use fewer"
        : `cannot read the YAML: ${(err as Error).message}`;
      errors.push({ line: undefined, message });
    }
  }
  return {
    value,
    errors,
    lineOf(path) {
      let node: unknown = doc.contents;
      let line: number | undefined;
      for (const seg of path) {
        if (isMap(node)) {
          const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
          if (!pair) break;
          line = lineAt((pair.key as Node).range?.[0]) ?? line;
          node = pair.value;
        } else if (isSeq(node) && typeof seg === "number" && node.items[seg]) {
          node = node.items[seg];
          line = lineAt((node as Node).range?.[0]) ?? line;
        } else {
          break;
        }
      }
      return line;
    },
  };
}
