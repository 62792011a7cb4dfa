/**
 * `tau container run|ls|stats|logs|exec|stop|rm|clone`, `tau + app.yml` and `tau image import|pull|ls`: argument parsing over
 * runtime/container (ContainerRuntime, importImage, cloneContainer), which the tests call directly.
 */
import type { Command } from "commander";
import { basename, dirname, resolve } from "node:path";
import { TauError } from "../runtime/errors.ts";
import { cloneContainer } from "../runtime/container/clone.ts";
import { importImage } from "../runtime/container/images/import.ts";
import { pullImage } from "../runtime/container/images/pull.ts";
import type { Credentials } from "../runtime/container/images/registry.ts";
import type { ContainerRecord } from "../runtime/container/records.ts";
import { ContainerRuntime, DEFAULT_DATA_DIR, type StartedContainer } from "../runtime/container/runtime.ts";
import { parseStatefile } from "../runtime/container/statefile.ts";

const DATA_HELP = `container state, images and the helper binary (default ${DEFAULT_DATA_DIR})`;

function open(opts: { data?: string }): Promise<ContainerRuntime> {
  return ContainerRuntime.open(opts.data ?? DEFAULT_DATA_DIR);
}

function printStarted(c: StartedContainer) {
  console.log(`started ${c.name} (${c.id})`);
  for (const p of c.ports) {
    console.log(`  port ${p.container} -> http://127.0.0.1:${p.host}  (unix socket ${p.socket})`);
  }
}

function statusText(r: ContainerRecord): string {
  if (r.status === "running") return "running";
  if (r.status === "failed") return `failed: ${r.error ?? "unknown"}`;
  return `exited (${r.exitCode}${r.oomKilled ? ", out of memory" : ""})`;
}

/** Starts every replica; a container that died at once is reported with its exit code and last output. */
export async function runStatefile(file: string, opts: { data?: string }): Promise<StartedContainer[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch {
    throw new TauError(`cannot read Statefile ${file}`, { hint: "give the path of a .yml file" });
  }
  const spec = parseStatefile(text, file, dirname(resolve(file)));
  const rt = await open(opts);
  if (!spec.name) {
    // Named after the Statefile (app.yml -> app) unless that name is taken.
    const base = basename(file).replace(/\.(ya?ml)$/, "").replace(/[^a-zA-Z0-9_.-]/g, "-");
    const taken = new Set((await rt.listContainers()).map((r) => r.name));
    if (/^[a-zA-Z0-9]/.test(base) && !taken.has(base) && !taken.has(`${base}-1`)) spec.name = base;
  }
  const started = await rt.run(spec, file);
  for (const c of started) {
    printStarted(c);
    const rec = await rt.getContainer(c.id);
    if (rec.status !== "running") {
      const lines = await rt.lastLogLines(c.id);
      throw new TauError(`container ${c.name} ${statusText(rec)}`, {
        hint: lines.length ? `last output:\n    ${lines.join("\n    ")}` : "it printed nothing",
      });
    }
  }
  return started;
}

interface PullFlags {
  registry?: string;
  tag?: string;
  data?: string;
  user?: string;
  passwordStdin?: boolean;
}

/** `--user NAME --password-stdin`; a password never goes on the command line, where `ps` would show it. */
async function credentialsFrom(opts: PullFlags): Promise<Credentials | undefined> {
  if (!opts.user && !opts.passwordStdin) return undefined;
  if (!opts.user || !opts.passwordStdin) {
    throw new TauError("--user and --password-stdin go together", {
      hint: 'echo "$PASSWORD" | tau image pull REF --user NAME --password-stdin',
    });
  }
  const password = (await new Response(Deno.stdin.readable).text()).replace(/\r?\n$/, "");
  if (!password) throw new TauError("no password on standard input", { hint: "pipe the password into the command" });
  return { username: opts.user, password };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

export function registerContainerCommands(program: Command): void {
  const container = program.command("container").description("run containers from Statefiles (needs root)");

  const runCmd = (cmd: Command) =>
    cmd.argument("<statefile>", "a Statefile (YAML)").option("--data <dir>", DATA_HELP).action(
      async (file: string, opts: { data?: string }) => {
        await runStatefile(file, opts);
      },
    );
  runCmd(container.command("run").description("start the container(s) a Statefile describes"));
  runCmd(program.command("+").description("same as tau container run"));

  container.command("ls").description("list containers").option("--data <dir>", DATA_HELP).action(
    async (opts: { data?: string }) => {
      const rt = await open(opts);
      const rows = [["ID", "NAME", "IMAGE", "STATUS", "PORTS"]];
      for (const r of await rt.listContainers()) {
        // Deployed containers publish only a Unix socket (host -1): the gateway is their way in.
        const ports = r.status === "running"
          ? r.ports.map((p) => `${p.host > 0 ? `127.0.0.1:${p.host}` : "unix"}->${p.container}`).join(",")
          : "";
        rows.push([r.id, r.name, r.labels?.["tau.image"] ?? r.image, statusText(r), ports]);
      }
      console.log(table(rows));
    },
  );

  container.command("stats").description("CPU time and memory of running containers (all when no id is given)")
    .argument("[id...]", "ids, id prefixes or names").option("--data <dir>", DATA_HELP)
    .action(async (ids: string[], opts: { data?: string }) => {
      const rt = await open(opts);
      const recs = ids.length
        ? await Promise.all(ids.map((id) => rt.getContainer(id)))
        : (await rt.listContainers()).filter((r) => r.status === "running");
      const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
      const rows = [["ID", "NAME", "PROCESSES", "CPU", "MEMORY (PSS)", "MEMORY CGROUP"]];
      for (const r of recs) {
        const u = await rt.usage(r.id);
        const cg = u.memoryCgroupBytes === undefined ? "-" : mib(u.memoryCgroupBytes);
        rows.push([r.id, r.name, String(u.processes), `${(u.cpuMs / 1000).toFixed(2)} s`, mib(u.pssBytes), cg]);
      }
      console.log(table(rows));
    });

  container.command("logs").description("print a container's output").argument("<id>", "id, id prefix or name")
    .option("-f, --follow", "keep printing until the container exits").option("--data <dir>", DATA_HELP)
    .action(async (id: string, opts: { follow?: boolean; data?: string }) => {
      const rt = await open(opts);
      for await (const chunk of rt.logs(id, opts.follow)) await Deno.stdout.write(chunk);
    });

  container.command("exec").description("run a command in a running container")
    .argument("<id>", "id, id prefix or name").argument("<command...>", "command and arguments (after --)")
    .option("--data <dir>", DATA_HELP)
    .action(async (id: string, command: string[], opts: { data?: string }) => {
      const rt = await open(opts);
      const { code } = await rt.execInContainer(id, command);
      if (code !== 0) throw new TauError(`${command[0]} exited with code ${code}`);
    });

  container.command("stop").description("stop a container (SIGTERM, then SIGKILL)")
    .argument("<id...>", "ids, id prefixes or names").option("-t, --time <seconds>", "grace period", "10")
    .option("--data <dir>", DATA_HELP).action(async (ids: string[], opts: { time: string; data?: string }) => {
      const rt = await open(opts);
      for (const id of ids) {
        const rec = await rt.stopContainer(id, Number(opts.time) * 1000);
        console.log(`${rec.name}: ${statusText(rec)}`);
      }
    });

  container.command("rm").description("remove a container and its files")
    .argument("<id...>", "ids, id prefixes or names").option("-f, --force", "stop it first if it runs")
    .option("--data <dir>", DATA_HELP).action(async (ids: string[], opts: { force?: boolean; data?: string }) => {
      const rt = await open(opts);
      for (const id of ids) {
        await rt.removeContainer(id, opts.force);
        console.log(`removed ${id}`);
      }
    });

  container.command("clone").description("start copies of a running container, files included")
    .argument("<id>", "id, id prefix or name").option("-n, --count <n>", "how many copies", "1")
    .option("--data <dir>", DATA_HELP).action(async (id: string, opts: { count: string; data?: string }) => {
      const rt = await open(opts);
      for (const c of await cloneContainer(rt, id, Number(opts.count))) printStarted(c);
    });

  const image = program.command("image").description("container images");
  image.command("import").description("import an OCI image layout (dir or tar) or a docker save archive")
    .argument("<path>", "file or directory").option("-t, --tag <ref>", "name the image (e.g. myapp:1)")
    .option("--data <dir>", DATA_HELP).action(async (path: string, opts: { tag?: string; data?: string }) => {
      const rt = await open(opts);
      for (const img of await importImage(rt.images, path, rt.helper, { tag: opts.tag })) {
        console.log(
          `imported ${img.refs.join(", ") || "(untagged)"} ${img.id.slice(7, 19)} (${img.layers.length} layers)`,
        );
      }
    });
  image.command("pull").description("pull an image from an OCI distribution registry")
    .argument("<ref>", "HOST[:PORT]/NAME[:TAG|@DIGEST], or NAME[:TAG] with --registry")
    .option("--registry <url>", "registry to pull from (e.g. http://127.0.0.1:5000)")
    .option("-t, --tag <ref>", "store the image under this name").option("--data <dir>", DATA_HELP)
    .option("-u, --user <name>", "user name for a private registry (default: from ~/.docker/config.json)")
    .option("--password-stdin", "read the registry password from standard input")
    .action(async (ref: string, opts: PullFlags) => {
      const credentials = await credentialsFrom(opts);
      const rt = await open(opts);
      const img = await pullImage(rt.images, rt.helper, ref, {
        registry: opts.registry,
        tag: opts.tag,
        log: (line) => console.log(line),
        credentials,
      });
      console.log(`pulled ${img.refs.join(", ")} ${img.id.slice(7, 19)} (${img.layers.length} layers)`);
    });
  image.command("ls").description("list images").option("--data <dir>", DATA_HELP).action(
    async (opts: { data?: string }) => {
      const rt = await open(opts);
      const rows = [["REF", "ID", "LAYERS", "SIZE"]];
      for (const img of await rt.images.list()) {
        const size = `${(img.size / 1024 / 1024).toFixed(1)} MB`;
        rows.push([img.refs.join(",") || "<none>", img.id.slice(7, 19), String(img.layers.length), size]);
      }
      console.log(table(rows));
    },
  );
}
