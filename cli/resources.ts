/**
 * `tau new function|website|domain|library|container|application|database|storage` and `tau validate`: thin argument parsing over
 * runtime/schema (addResource, loadProjectConfig), which the tests also call directly.
 */
import type { Command } from "commander";
import { join } from "node:path";
import { TauError } from "../runtime/errors.ts";
import {
  addResource,
  assertValid,
  findProjectDir,
  formatIssue,
  loadProjectConfig,
  type ProjectConfig,
  type ScaffoldKind,
} from "../runtime/schema/mod.ts";

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "2 functions, 1 website, 2 domains" (+ the other kinds and applications when present). */
export function summarise(config: ProjectConfig): string {
  const parts = [
    plural(config.functions.length, "function"),
    plural(config.websites.length, "website"),
    plural(config.domains.length, "domain"),
  ];
  if (config.libraries.length) parts.push(plural(config.libraries.length, "library", "libraries"));
  if (config.containers.length) parts.push(plural(config.containers.length, "container"));
  if (config.applications.length) parts.push(plural(config.applications.length, "application"));
  if (config.databases.length) parts.push(plural(config.databases.length, "database"));
  if (config.storages.length) parts.push(plural(config.storages.length, "storage"));
  if (config.messaging.length) parts.push(plural(config.messaging.length, "messaging channel"));
  if (config.services.length) parts.push(plural(config.services.length, "service"));
  if (config.smartops.length) parts.push(plural(config.smartops.length, "smartop"));
  return parts.join(", ");
}

async function scaffold(kind: ScaffoldKind, name: string, opts: Record<string, unknown>): Promise<void> {
  const projectDir = await findProjectDir(opts.dir as string | undefined);
  const written = await addResource(projectDir, kind, name, opts);
  console.log(`created ${kind} '${name}'${opts.app ? ` in application '${opts.app}'` : ""}:`);
  for (const f of written) console.log(`  ${join(projectDir, f)}`);
  const codeChanged = written.some((f) => f.startsWith("code/"));
  console.log("next: commit and push config" + (codeChanged ? " and code" : "") + ":");
  const where = projectDir === Deno.cwd() ? "" : `cd ${projectDir} && `;
  console.log(`  ${where}git -C config add -A && git -C config commit -m "add ${kind} ${name}" && git -C config push`);
  if (codeChanged) {
    console.log(`  ${where}git -C code add -A && git -C code commit -m "add ${kind} ${name}" && git -C code push`);
  }
}

/** Where the config repo is for `tau validate`: a project folder's config/, or a config repo itself. */
async function configDirFor(dir: string | undefined): Promise<string> {
  if (dir) {
    const isConfigRepo = await Deno.stat(join(dir, "config.yaml")).then(() => true, () => false);
    const hasConfigFolder = await Deno.stat(join(dir, "config")).then(() => true, () => false);
    if (isConfigRepo && !hasConfigFolder) return dir;
  }
  return join(await findProjectDir(dir), "config");
}

export function registerResourceCommands(program: Command, newCommand: Command): void {
  const dirOption = ["--dir <project>", "project folder holding config/ and code/ (default: found from cwd)"] as const;
  const appOption = ["--app <application>", "create it inside this application"] as const;
  const descOption = ["--description <text>", "description"] as const;

  newCommand.command("function <name>")
    .description("add a function: config/functions/<name>.yaml and code/functions/<name>/")
    .option("--domains <names>", "domain names, comma separated (default: the only domain, if just one)")
    .option("--paths <paths>", "paths, comma separated: /ping, /users/:id, /files/* (default: /<name>)")
    .option("--method <method>", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY", "GET")
    .option("--call <symbol>", "exported function to call (default: the name)")
    .option("--timeout <duration>", "e.g. 10s, 500ms (max 5m)", "10s")
    .option("--memory <size>", "e.g. 16MB, 64KB", "16MB")
    .option("--source <source>", '"." or libraries/<library>', ".")
    .option("--template <template>", "assemblyscript or wasm", "assemblyscript")
    .option(...appOption).option(...descOption).option(...dirOption)
    .action((name: string, opts: Record<string, unknown>) => scaffold("function", name, opts));

  newCommand.command("website <name>")
    .description("add a website: config/websites/<name>.yaml and code/websites/<name>/index.html")
    .option("--domains <names>", "domain names, comma separated (default: the only domain, if just one)")
    .option("--paths <paths>", "path prefixes, comma separated", "/")
    .option("--spa", "single-page app: unknown paths serve index.html", false)
    .option(...appOption).option(...descOption).option(...dirOption)
    .action((name: string, opts: Record<string, unknown>) => scaffold("website", name, opts));

  newCommand.command("domain <name>")
    .description("add a domain: config/domains/<name>.yaml")
    .requiredOption("--fqdn <host>", "lowercase DNS name, e.g. api.hello.localtau")
    .option(...appOption).option(...descOption).option(...dirOption)
    .action((name: string, opts: Record<string, unknown>) => scaffold("domain", name, opts));

  newCommand.command("library <name>")
    .description("add a library: config/libraries/<name>.yaml and code/libraries/<name>/")
    .option(...appOption).option(...descOption).option(...dirOption)
    .action((name: string, opts: Record<string, unknown>) => scaffold("library", name, opts));

  newCommand.command("container <name>")
    .description("add a container served by the gateway: config/containers/<name>.yaml (needs root on the node)")
    .requiredOption("--image <ref>", "image reference (tau image ls), e.g. busybox:latest")
    .option("--port <port>", "the HTTP port the container listens on", "8080")
    .option("--command <command>", 'command and arguments, e.g. "httpd -f -p 8080" (default: the image\'s)')
    .option("--memory <size>", "memory limit", "128MB")
    .option("--replicas <n>", "copies to run", "1")
    .option("--domains <names>", "domain names, comma separated (default: the only domain, if just one)")
    .option("--paths <paths>", "path prefixes, comma separated", "/")
    .option(...appOption).option(...descOption).option(...dirOption)
    .action((name: string, opts: Record<string, unknown>) => scaffold("container", name, opts));

  newCommand.command("database <name>")
    .description("add a key-value database functions open by name: config/databases/<name>.yaml")
    .option("--match <name>", "the database name functions open (default: the resource's name)")
    .option("--regex", "--match is a regular expression over names", false)
    .option("--size <size>", "most one database name may hold, e.g. 100MB", "100MB")
    .option(...appOption).option(...descOption).option(...dirOption)
    .action((name: string, opts: Record<string, unknown>) => scaffold("database", name, opts));

  newCommand.command("storage <name>")
    .description("add an object (or, with --ttl, streaming) storage: config/storages/<name>.yaml")
    .option("--match <name>", "the storage name functions open (default: the resource's name)")
    .option("--regex", "--match is a regular expression over names", false)
    .option("--size <size>", "capacity of one storage name, e.g. 1GB", "1GB")
    .option("--versioning", "keep every version of a file", false)
    .option("--ttl <duration>", "a streaming storage: entries expire after this, e.g. 1h")
    .option(...appOption).option(...descOption).option(...dirOption)
    .action((name: string, opts: Record<string, unknown>) => scaffold("storage", name, opts));

  newCommand.command("application <name>")
    .description("add an application: config/applications/<name>/config.yaml")
    .option(...descOption).option(...dirOption)
    .action((name: string, opts: Record<string, unknown>) => scaffold("application", name, opts));

  program.command("validate")
    .description("check the project's config repo offline, with the same rules as the build")
    .option("--dir <dir>", "project folder (holding config/) or a config repo (default: found from cwd)")
    .action(async (opts: { dir?: string }) => {
      const dir = await configDirFor(opts.dir);
      const result = await loadProjectConfig(dir);
      for (const w of result.config?.warnings ?? []) console.error(`warning: ${formatIssue(w)}`);
      if (result.issues.length === 0 && result.config) {
        console.log(`config OK: ${summarise(assertValid(result))}`);
        return;
      }
      for (const issue of result.issues) console.error(formatIssue(issue));
      const n = result.issues.length;
      throw new TauError(`config in ${dir} has ${n} issue${n === 1 ? "" : "s"}`, {
        hint: "fix the lines above and run `tau validate` again",
      });
    });
}
