/**
 * `tau drive`: a cloud described by one folder of YAML (Spore Drive's format; services/drive). The offline part:
 * init, validate, and the host / shape / auth edits. (plot, displace and status come next.)
 */
import type { Command } from "commander";
import { join } from "node:path";
import { TauError } from "../runtime/errors.ts";
import { loadFolder } from "../services/drive/folder.ts";
import { formatIssue, validateFolder } from "../services/drive/validate.ts";
import {
  addAuth,
  addHost,
  addShape,
  initFolder,
  removeAuth,
  removeHost,
  removeShape,
} from "../services/drive/drive.ts";

/** ~/.tau/clouds/<name> ($TAU_HOME/clouds/<name>), or --dir. */
export function cloudDir(cloud: string | undefined, dir: string | undefined): string {
  if (dir) return dir;
  if (!cloud) throw new TauError("which cloud? name it or pass --dir DIR", { hint: "e.g. tau drive validate mycloud" });
  const home = Deno.env.get("TAU_HOME") ?? join(Deno.env.get("HOME") ?? ".", ".tau");
  return join(home, "clouds", cloud);
}

const collect = (v: string, acc: string[]) => [...acc, ...v.split(",").map((s) => s.trim()).filter(Boolean)];

function port(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) {
    throw new TauError(`${flag} ${value} is not a port`, { hint: "use 1-65535" });
  }
  return n;
}

async function readStdin(): Promise<string> {
  if (Deno.stdin.isTerminal()) {
    throw new TauError("--password-stdin reads the password from a pipe", {
      hint: 'echo "$PASSWORD" | tau drive auth add ...',
    });
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of Deno.stdin.readable) {
    size += chunk.length;
    if (size > 4096) throw new TauError("the password on stdin is over 4 KiB", { hint: "pipe the password only" });
    chunks.push(chunk);
  }
  const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  return text.replace(/\r?\n$/, "");
}

export function registerDriveCommands(program: Command): void {
  const drive = program.command("drive").description("a cloud on your own hosts, described by one folder of YAML");
  const dirOption = ["--dir <dir>", "the cloud folder (default ~/.tau/clouds/<cloud>)"] as const;

  drive.command("init <cloud>")
    .description("write a new cloud folder: cloud.yaml, hosts.yaml, auth.yaml, shapes.yaml, a swarm key and DV keys")
    .requiredOption("--root-domain <domain>", "the cloud's domain, e.g. example.com")
    .requiredOption("--generated-domain <domain>", "the domain of generated names, e.g. g.example.com")
    .option(...dirOption)
    .action(async (cloud: string, o: { rootDomain: string; generatedDomain: string; dir?: string }) => {
      const dir = cloudDir(cloud, o.dir);
      const r = await initFolder({ dir, cloud, rootDomain: o.rootDomain, generatedDomain: o.generatedDomain });
      console.log(`cloud ${cloud}: ${r.dir} (${r.files.join(", ")})`);
      console.log(`next: tau drive auth add, tau drive shape add, tau drive host add --dir ${r.dir}`);
    });

  drive.command("validate [cloud]")
    .description("check a cloud folder offline: each problem one line naming its file and line")
    .option(...dirOption)
    .action(async (cloud: string | undefined, o: { dir?: string }) => {
      const dir = cloudDir(cloud, o.dir);
      const report = await validateFolder(await loadFolder(dir));
      for (const n of report.notes) console.log(`note: ${formatIssue(n)}`);
      if (report.problems.length) {
        for (const p of report.problems) console.error(formatIssue(p));
        const n = report.problems.length;
        throw new TauError(`cloud folder ${dir} has ${n} problem${n === 1 ? "" : "s"}`, {
          hint: "fix the lines above and run tau drive validate again",
        });
      }
      const s = report.summary;
      console.log(
        `ok: ${dir}: ${s.hosts} host${s.hosts === 1 ? "" : "s"}, ${s.shapes} shape${s.shapes === 1 ? "" : "s"}, ` +
          `${s.nodes} node${s.nodes === 1 ? "" : "s"}, ${s.credentials} credential${s.credentials === 1 ? "" : "s"}` +
          (s.others.length ? `; kept: ${s.others.join(", ")}` : ""),
      );
    });

  const host = drive.command("host").description("the hosts of a cloud folder (hosts.yaml)");
  host.command("add <name>")
    .description("add a host")
    .requiredOption("--addr <cidr...>", "its address(es) with prefix, e.g. 10.0.0.5/24")
    .requiredOption("--ssh <addr[:port]>", "where SSH reaches it (port 22 by default)")
    .requiredOption("--auth <credential>", "a credential of auth.yaml (repeatable, or a comma list)", collect, [])
    .option("--shape <shape>", "a shape the host carries (repeatable, or a comma list)", collect, [])
    .option("--location <lat,long>", "where the host is, in degrees")
    .option("--cloud <cloud>", "the cloud (its folder under ~/.tau/clouds)")
    .option(...dirOption)
    .action(
      async (
        name: string,
        o: {
          addr: string[];
          ssh: string;
          auth: string[];
          shape: string[];
          location?: string;
          cloud?: string;
          dir?: string;
        },
      ) => {
        const file = await addHost(cloudDir(o.cloud, o.dir), name, {
          addr: o.addr.flatMap((a) => a.split(",")).filter(Boolean),
          ssh: o.ssh,
          auth: o.auth,
          shapes: o.shape,
          location: o.location,
        });
        console.log(`host ${name} added to ${file}`);
      },
    );
  host.command("rm <name>")
    .description("remove a host (refused while cloud.yaml lists it as a bootstrap host)")
    .option("--cloud <cloud>", "the cloud (its folder under ~/.tau/clouds)")
    .option(...dirOption)
    .action(async (name: string, o: { cloud?: string; dir?: string }) => {
      console.log(`host ${name} removed from ${await removeHost(cloudDir(o.cloud, o.dir), name)}`);
    });

  const shape = drive.command("shape").description("the shapes of a cloud folder (shapes.yaml)");
  shape.command("add <name>")
    .description("add a shape: the services its nodes run and their ports")
    .requiredOption("--services <list>", "a comma list of services")
    .requiredOption("--port-main <port>", "the node's main (libp2p) port")
    .requiredOption("--port-lite <port>", "the node's lite port")
    .option(
      "--port <name=port>",
      "another port, e.g. http=8080 (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option("--plugins <list>", "plugins (kept for Taubyte; tau loads none)", collect, [])
    .option("--cloud <cloud>", "the cloud (its folder under ~/.tau/clouds)")
    .option(...dirOption)
    .action(async (name: string, o: {
      services: string;
      portMain: string;
      portLite: string;
      port: string[];
      plugins: string[];
      cloud?: string;
      dir?: string;
    }) => {
      const ports: Record<string, number> = {
        main: port(o.portMain, "--port-main"),
        lite: port(o.portLite, "--port-lite"),
      };
      for (const p of o.port) {
        const m = p.match(/^([a-z][a-z0-9-]*)=(.*)$/);
        if (!m) throw new TauError(`--port ${p} is not NAME=PORT`, { hint: "e.g. --port http=8080" });
        if (m[1] in ports) throw new TauError(`--port ${m[1]} is given twice`);
        ports[m[1]] = port(m[2], `--port ${m[1]}`);
      }
      const services = o.services.split(",").map((s) => s.trim()).filter(Boolean);
      const file = await addShape(cloudDir(o.cloud, o.dir), name, { services, ports, plugins: o.plugins });
      console.log(`shape ${name} added to ${file}`);
    });
  shape.command("rm <name>")
    .description("remove a shape (refused while a host carries it or cloud.yaml bootstraps it)")
    .option("--cloud <cloud>", "the cloud (its folder under ~/.tau/clouds)")
    .option(...dirOption)
    .action(async (name: string, o: { cloud?: string; dir?: string }) => {
      console.log(`shape ${name} removed from ${await removeShape(cloudDir(o.cloud, o.dir), name)}`);
    });

  const auth = drive.command("auth").description("the SSH credentials of a cloud folder (auth.yaml)");
  auth.command("add <name>")
    .description("add a credential: a username with a password (from stdin) or a key file")
    .requiredOption("--username <user>", "the user SSH logs in as")
    .option("--password-stdin", "read the password from stdin")
    .option("--key <file>", "an SSH private key (copied into keys/ unless already in the folder)")
    .option("--cloud <cloud>", "the cloud (its folder under ~/.tau/clouds)")
    .option(...dirOption)
    .action(
      async (
        name: string,
        o: { username: string; passwordStdin?: boolean; key?: string; cloud?: string; dir?: string },
      ) => {
        if (o.passwordStdin && o.key) {
          throw new TauError("--password-stdin and --key go one at a time", {
            hint: "a credential has a password or a key",
          });
        }
        const dir = cloudDir(o.cloud, o.dir);
        const password = o.passwordStdin ? await readStdin() : undefined;
        const r = await addAuth(dir, name, { username: o.username, password, key: o.key });
        if (r.copied) console.log(`key copied to ${r.copied}`);
        console.log(`credential ${name} added to ${r.file}`);
      },
    );
  auth.command("rm <name>")
    .description("remove a credential (refused while a host logs in with it)")
    .option("--cloud <cloud>", "the cloud (its folder under ~/.tau/clouds)")
    .option(...dirOption)
    .action(async (name: string, o: { cloud?: string; dir?: string }) => {
      console.log(`credential ${name} removed from ${await removeAuth(cloudDir(o.cloud, o.dir), name)}`);
    });
}
