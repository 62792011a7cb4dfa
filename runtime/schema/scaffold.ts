/**
 * `tau new function|website|domain|library|container|application|database|storage`: writes the resource's YAML (and starter code), after
 * checking the result with the same validator the build uses, so a scaffolded project is always valid.
 */
import { dirname, join, resolve } from "node:path";
import { Document, visit } from "yaml";
import { TauError } from "../errors.ts";
import { nameProblem } from "./fields.ts";
import { KIND_BY_NAME } from "./kinds.ts";
import { projectId, resourceId, stableId } from "./ids.ts";
import { formatIssue, readConfigFiles } from "./load.ts";
import { parseProjectConfig } from "./parse.ts";
import { functionTemplate, libraryTemplate, wasmReadme, websiteTemplate } from "./templates.ts";
import type { ConfigIssue } from "./types.ts";

export type ScaffoldKind =
  | "function"
  | "website"
  | "domain"
  | "library"
  | "container"
  | "application"
  | "database"
  | "storage";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * The project folder (holding config/ and code/): `dir` when given; else `cwd` when it holds config/; else the
 * nearest ancestor of `cwd` holding config/config.yaml (so commands work from inside config/ or code/).
 */
export async function findProjectDir(dir?: string, cwd = Deno.cwd()): Promise<string> {
  if (dir) {
    const abs = resolve(cwd, dir);
    if (await exists(join(abs, "config"))) return abs;
    throw new TauError(`${abs} is not a tau project folder: it has no config/ folder`, {
      hint: "pass the folder that holds config/ and code/ (the one `tau new project` created)",
    });
  }
  if (await exists(join(cwd, "config"))) return resolve(cwd);
  for (let d = resolve(cwd), i = 0; i < 64; i++) {
    if (await exists(join(d, "config", "config.yaml"))) return d;
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  throw new TauError(`no tau project found from ${cwd}`, {
    hint: "run inside a project created by `tau new project`, or pass --dir <project folder>",
  });
}

function listOpt(v: unknown): string[] | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  const items = Array.isArray(v) ? v.map(String) : String(v).split(",");
  return items.map((s) => s.trim()).filter((s) => s.length > 0);
}

function str(v: unknown): string | undefined {
  return v === undefined || v === null || v === "" ? undefined : String(v);
}

function toYaml(value: Record<string, unknown>, comment: string): string {
  const doc = new Document(value);
  // On the top mapping rather than the document, so no blank line separates it from the first key.
  if (doc.contents) doc.contents.commentBefore = comment;
  // Short lists read best inline ("paths: [/ping]"), as in the examples of docs/config-schema.md.
  visit(doc, { Seq: (_, node) => void (node.flow = true) });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

/** Domain names visible from `app` (for the default of --domains). */
function visibleDomains(files: Record<string, string>, app: string | undefined): string[] {
  const prefixes = app !== undefined ? [`applications/${app}/domains/`, "domains/"] : ["domains/"];
  return Object.keys(files)
    .filter((f) => prefixes.some((p) => f.startsWith(p) && !f.slice(p.length).includes("/")))
    .map((f) => f.replace(/^.*\//, "").replace(/\.yaml$/, ""));
}

/**
 * Adds a resource to the project in `projectDir` (the folder holding config/ and code/). Options are the CLI's:
 * domains, paths, method, call, timeout, memory, source, template, spa, fqdn, description, app.
 * Returns the files written, relative to projectDir. Throws TauError (nothing written) when the result would not
 * validate or the resource already exists.
 */
export async function addResource(
  projectDir: string,
  kind: ScaffoldKind,
  name: string,
  opts: Record<string, unknown>,
): Promise<string[]> {
  const configDir = join(projectDir, "config");
  if (!(await exists(join(configDir, "config.yaml")))) {
    throw new TauError(`${projectDir} has no config/config.yaml`, {
      hint: "create the project first with `tau new project <name>`, or pass --dir <project folder>",
    });
  }
  const problem = nameProblem(name, `${kind} name`);
  if (problem) {
    throw new TauError(problem, { hint: "names are letters, digits and _, starting with a letter or _" });
  }
  const app = str(opts.app);
  if (app !== undefined && kind === "application") throw new TauError("--app does not apply to `tau new application`");
  const files = await readConfigFiles(configDir);
  if (app !== undefined && !(`applications/${app}/config.yaml` in files)) {
    throw new TauError(`application '${app}' does not exist`, { hint: `create it first: tau new application ${app}` });
  }

  const before = parseProjectConfig(files);
  const project = parseProjectConfig({ "config.yaml": files["config.yaml"] }).config;
  const pid = project?.id ?? projectId("project");
  const prefix = app !== undefined ? `applications/${app}/` : "";
  const rel = kind === "application"
    ? `applications/${name}/config.yaml`
    : `${prefix}${KIND_BY_NAME.get(kind)!.folder}/${name}.yaml`;
  if (rel in files || (await exists(join(configDir, rel)))) {
    throw new TauError(`${kind} '${name}' already exists: config/${rel}`, {
      hint: `pick another name, or edit config/${rel} by hand`,
    });
  }

  const id = kind === "application" ? stableId(pid, "application", name) : resourceId(pid, app, kind, name);
  const description = str(opts.description) ?? "";
  const domains = () => {
    const given = listOpt(opts.domains);
    if (given) return given;
    const visible = visibleDomains(files, app);
    if (visible.length === 1) return visible;
    throw new TauError(`--domains is required for a ${kind}`, {
      hint: visible.length
        ? `choose among: ${visible.join(", ")} (e.g. --domains ${visible[0]})`
        : `create a domain first: tau new domain <name> --fqdn <host>`,
    });
  };

  let value: Record<string, unknown>;
  let comment: string;
  const code: [string, string][] = [];
  if (kind === "function") {
    const source = str(opts.source) ?? ".";
    const method = (str(opts.method) ?? "GET").toUpperCase();
    const paths = listOpt(opts.paths) ?? [`/${name}`];
    const call = str(opts.call) ?? name;
    value = {
      id,
      description,
      tags: [],
      source,
      trigger: { type: "https", method, paths, domains: domains() },
      execution: { timeout: str(opts.timeout) ?? "10s", memory: str(opts.memory) ?? "16MB", call },
    };
    comment = ` Function ${name}: ${method} ${paths.join(", ")}. Code: code repo ${
      source === "." ? `${prefix}functions/${name}` : source
    }/`;
    const template = str(opts.template) ?? "assemblyscript";
    if (template !== "assemblyscript" && template !== "wasm") {
      throw new TauError(`unknown template '${template}'`, {
        hint: "use --template assemblyscript or --template wasm",
      });
    }
    if (source === ".") {
      const dir = `code/${prefix}functions/${name}`;
      code.push(
        template === "wasm"
          ? [`${dir}/README.md`, wasmReadme(name, call)]
          : [`${dir}/index.ts`, functionTemplate(call, method, paths[0])],
      );
    }
  } else if (kind === "website") {
    value = {
      id,
      description,
      tags: [],
      domains: domains(),
      paths: listOpt(opts.paths) ?? ["/"],
      source: ".",
      spa: !!opts.spa,
    };
    comment = ` Website ${name}: files from code repo ${prefix}websites/${name}/ (its build/ folder when present).`;
    code.push([`code/${prefix}websites/${name}/index.html`, websiteTemplate(name, `${prefix}websites/${name}`)]);
  } else if (kind === "domain") {
    const fqdn = str(opts.fqdn);
    if (!fqdn) {
      throw new TauError("--fqdn is required for a domain", {
        hint: `e.g. tau new domain ${name} --fqdn api.example.localtau`,
      });
    }
    value = { id, description, tags: [], fqdn };
    comment = ` Domain ${name}: functions and websites list '${name}' in their domains.`;
  } else if (kind === "library") {
    value = { id, description, tags: [], source: "." };
    comment =
      ` Library ${name}: code in code repo ${prefix}libraries/${name}/; use it with \`source: libraries/${name}\`.`;
    code.push([`code/${prefix}libraries/${name}/index.ts`, libraryTemplate(name)]);
  } else if (kind === "container") {
    const image = str(opts.image);
    if (!image) {
      throw new TauError("--image is required for a container", {
        hint: `e.g. tau new container ${name} --image busybox`,
      });
    }
    const port = Number(str(opts.port) ?? 8080);
    const command = str(opts.command)?.split(/\s+/).filter(Boolean);
    value = {
      id,
      description,
      tags: [],
      container: image,
      port,
      ...(command ? { command } : {}),
      env: {},
      limits: { memory: str(opts.memory) ?? "128MB" },
      replicas: Number(str(opts.replicas) ?? 1),
      domains: domains(),
      paths: listOpt(opts.paths) ?? ["/"],
    };
    comment =
      ` Container ${name}: image ${image}, HTTP on port ${port}, proxied by the gateway. See docs/containers.md.`;
  } else if (kind === "database") {
    const match = str(opts.match) ?? name;
    const regex = !!opts.regex;
    value = {
      id,
      description,
      tags: [],
      match,
      useRegex: regex,
      access: { network: "all" },
      storage: {
        size: str(opts.size) ?? "100MB",
      },
    };
    comment = ` Database ${name}: functions open "${match}"${regex ? " (a regular expression)" : ""} with ` +
      `database.New; up to ${str(opts.size) ?? "100MB"} per name.`;
  } else if (kind === "storage") {
    const match = str(opts.match) ?? name;
    const regex = !!opts.regex;
    const size = str(opts.size) ?? "1GB";
    const ttl = str(opts.ttl);
    value = {
      id,
      description,
      tags: [],
      match,
      useRegex: regex,
      access: { network: "all" },
      ...(ttl ? { streaming: { ttl, size } } : { object: { versioning: !!opts.versioning, size } }),
    };
    comment = ` Storage ${name}: functions open "${match}"${regex ? " (a regular expression)" : ""} with ` +
      `storage.New; ${ttl ? `entries expire after ${ttl}` : opts.versioning ? "files keep their versions" : "files"}` +
      `, up to ${size}.`;
  } else {
    value = { id, description, tags: [] };
    comment = ` Application ${name}: its resources live in the folders next to this file.`;
  }
  const yamlText = toYaml(value, comment);

  // Same validator as the build: refuse anything that adds an issue (unknown domain, bad path, route clash, ...).
  const after = parseProjectConfig({ ...files, [rel]: yamlText });
  const old = new Set(before.issues.map(formatIssue));
  const added: ConfigIssue[] = after.issues.filter((i) => !old.has(formatIssue(i)));
  if (added.length) {
    throw new TauError(formatIssue(added[0]).replace(rel, `config/${rel}`), {
      hint: "nothing was written; fix the options and run the command again",
      detail: added.map(formatIssue).join("\n"),
    });
  }

  const written: string[] = [];
  await Deno.mkdir(dirname(join(configDir, rel)), { recursive: true });
  await Deno.writeTextFile(join(configDir, rel), yamlText, { createNew: true });
  written.push(`config/${rel}`);
  for (const [path, text] of code) {
    const full = join(projectDir, path);
    // Code may already be there (a second resource sharing it, or code pushed first): never overwrite it.
    if (await exists(dirname(full))) continue;
    await Deno.mkdir(dirname(full), { recursive: true });
    await Deno.writeTextFile(full, text);
    written.push(path);
  }
  return written;
}
