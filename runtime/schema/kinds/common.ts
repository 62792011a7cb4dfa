/** What every resource kind shares: the identity block and the code source of functions and smartops. */
import { derivedText, duration, type Field, list, nameProblem, pathText, type Shape, size, text } from "../fields.ts";
import { smartopsTagItem, symbolProblem } from "../checks.ts";

export const common: Shape = {
  id: text("Stable id (Taubyte writes a CID). Generated from project, scope, type and name when empty."),
  name: text("Optional; when present it must equal the file name."),
  description: text("Free text."),
  tags: list('Free-form labels; "smartops:<name>" attaches a smartop, which must exist.', {
    unique: true,
    item: smartopsTagItem,
  }),
};

/** Code of a function or smartop: "." (its own folder) or "libraries/<lib>" (a library's code), which must exist. */
export const codeSource: Field<string> = {
  doc: '"." = code repo <kind folder>/<name>/; "libraries/<lib>" = code repo libraries/<lib>/.',
  defaultValue: () => ".",
  read(raw, path, ctx) {
    const v = typeof raw === "string" ? raw.replace(/\/+$/, "") : undefined;
    if (v === ".") return v;
    const lib = v?.match(/^libraries\/([^/]+)$/)?.[1];
    if (lib === undefined) {
      ctx.issue(path, `${pathText(path)} ${JSON.stringify(raw)} must be "." or "libraries/<library name>"`);
      return undefined;
    }
    const problem = nameProblem(lib, "library name");
    if (problem) {
      ctx.issue(path, problem);
      return undefined;
    }
    ctx.ref("library", lib, path);
    return v;
  },
};

/**
 * Limits and entry point of code that runs (functions, smartops). No maxima here, as in Taubyte: a project asks, the
 * node decides; a build clamps a limit above what the node allows and says so in its log (services/monkey).
 */
export function executionGroup(what: string) {
  return {
    doc: "Limits and entry point.",
    fields: {
      timeout: duration(`Wall-clock limit per ${what}.`, "10s", { min: 1 }),
      memory: size("Memory limit (decimal units as in Taubyte: 64MB = 64,000,000 bytes).", "16MB", { min: 1 }),
      call: derivedText("Exported symbol to call; defaults to the resource name.", (ctx) => ctx.name, symbolProblem),
    },
  };
}
