/** Reading a config repo from disk, and the throwing variant used by the build and `tau validate`. */
import { join, relative, sep } from "node:path";
import { TauError } from "../errors.ts";
import { configSizeIssues, MAX_CONFIG_FILE_BYTES } from "./limits.ts";
import { parseProjectConfig } from "./parse.ts";
import type { ConfigIssue, ParseResult, ProjectConfig } from "./types.ts";

/** "functions/ping.yaml:7: message" (no ":line" when the line is unknown). */
export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}${issue.line !== undefined ? `:${issue.line}` : ""}: ${issue.message}`;
}

type Sizes = { path: string; size: number }[];

async function collectYaml(root: string, dir: string, out: Record<string, string>, sizes: Sizes): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const full = join(dir, entry.name);
    // Only real folders: a symlinked folder could loop; .git and node_modules are never config.
    if (entry.isDirectory && entry.name !== ".git" && entry.name !== "node_modules") {
      await collectYaml(root, full, out, sizes);
    } else if (entry.isFile && entry.name.endsWith(".yaml")) {
      const path = relative(root, full).split(sep).join("/");
      const { size } = await Deno.stat(full);
      sizes.push({ path, size });
      // A file over the cap is not read: the same size check as the build reports it (limits.ts).
      if (size <= MAX_CONFIG_FILE_BYTES) out[path] = await Deno.readTextFile(full);
    }
  }
}

/** Every *.yaml under a config repo as relative path ("/" separated) -> text; what parseProjectConfig takes. */
export async function readConfigFiles(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  await collectYaml(dir, dir, files, []);
  return files;
}

/** Reads every *.yaml under `dir` (the config repo root, skipping .git) and parses it. */
export async function loadProjectConfig(dir: string): Promise<ParseResult> {
  const files: Record<string, string> = {};
  const sizes: Sizes = [];
  try {
    await collectYaml(dir, dir, files, sizes);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return { issues: [{ file: "config.yaml", message: `config folder ${dir} does not exist` }] };
    }
    throw err;
  }
  const tooBig = configSizeIssues(sizes);
  return tooBig.length ? { issues: tooBig } : parseProjectConfig(files);
}

/** The config, or a TauError naming the first issue (all issues in `detail`). */
export function assertValid(result: ParseResult): ProjectConfig {
  if (result.config && result.issues.length === 0) return result.config;
  const issues = result.issues.length ? result.issues : [{ file: "config.yaml", message: "config is invalid" }];
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more issue${issues.length > 2 ? "s" : ""})` : "";
  throw new TauError(formatIssue(issues[0]), {
    hint: `fix the config${more}; run \`tau validate\` to list every issue`,
    detail: issues.map(formatIssue).join("\n"),
  });
}
