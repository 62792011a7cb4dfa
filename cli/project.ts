/** Commands that talk to a cloud about projects: new project, builds, logs, deployments, rollback. */
import type { Command } from "commander";
import { join } from "node:path";
import { TauError } from "../runtime/errors.ts";
import { git } from "../runtime/git/git.ts";
import type { Job } from "../services/patrick/jobs.ts";
import type { DeploymentRef } from "../services/tns/records.ts";
import { checkProjectName } from "../services/auth/projects.ts";
import { checkUpstreamUrl } from "../runtime/git/upstream.ts";
import { api, cloudUrl, currentProject } from "./client.ts";
import { loadProjectConfig } from "../runtime/schema/load.ts";

interface ProjectView {
  name: string;
  git: { config: string; code: string };
  webhook: { url: string; secret: string };
}

export async function newProject(
  cloud: string,
  name: string,
  opts: {
    dir?: string;
    description?: string;
    configUpstream?: string;
    codeUpstream?: string;
    log?: (line: string) => void;
  },
): Promise<{ project: ProjectView; dir: string }> {
  const log = opts.log ?? (() => {});
  checkProjectName(name); // the cloud checks too; checking here first spares a round trip and a half-made folder
  if (opts.configUpstream) checkUpstreamUrl(opts.configUpstream, "--config-upstream");
  if (opts.codeUpstream) checkUpstreamUrl(opts.codeUpstream, "--code-upstream");
  const dir = join(opts.dir ?? ".", name);
  try {
    await Deno.stat(dir);
    throw new TauError(`folder ${dir} already exists`, { hint: "run tau new project somewhere else, or pass --dir" });
  } catch (err) {
    if (err instanceof TauError) throw err;
  }
  const project = await api<ProjectView>(cloud, "/projects", {
    method: "POST",
    json: {
      name,
      description: opts.description,
      upstreams: { config: opts.configUpstream, code: opts.codeUpstream },
    },
  });
  log(`registered project ${name}`);
  await Deno.mkdir(dir, { recursive: true });
  for (const repo of ["config", "code"] as const) {
    log(`cloning ${project.git[repo]} into ${join(dir, repo)}`);
    await git(["clone", "--quiet", project.git[repo], join(dir, repo)]);
  }
  return { project, dir };
}

/** FQDNs of the domains in ./config (or ./ when run inside the config repo); none when there is no config here. */
async function localFqdns(): Promise<string[]> {
  for (const dir of ["config", "."]) {
    try {
      await Deno.stat(`${dir}/config.yaml`);
    } catch {
      continue;
    }
    const { config } = await loadProjectConfig(dir);
    return config ? [...new Set(config.domains.map((d) => d.fqdn))] : [];
  }
  return [];
}

export function registerProjectCommands(program: Command, newCommand: Command): void {
  newCommand.command("project <name>")
    .description("register a project and clone its config and code repos into ./<name>/")
    .option("--cloud <url>", "the cloud's URL (default $TAU_CLOUD or the local cloud)")
    .option("--description <text>", "what the project is")
    .option("--dir <dir>", "where to create the project folder", ".")
    .option("--config-upstream <url>", "mirror the config repo from this git URL (pushes there arrive by webhook)")
    .option("--code-upstream <url>", "mirror the code repo from this git URL")
    .action(async (
      name: string,
      opts: { cloud?: string; description?: string; dir: string; configUpstream?: string; codeUpstream?: string },
    ) => {
      const { project, dir } = await newProject(cloudUrl(opts.cloud), name, { ...opts, log: console.log });
      console.log(`project ${name} ready in ${dir}/config and ${dir}/code`);
      console.log(`  next: cd ${dir} && tau new function ping --domains hello --paths /ping`);
      console.log(`  webhook for external git hosts: ${project.webhook.url}`);
    });

  program.command("project [name]")
    .description("show a project's repos and webhook")
    .option("--cloud <url>", "the cloud's URL")
    .action(async (name: string | undefined, opts: { cloud?: string }) => {
      const cloud = cloudUrl(opts.cloud);
      const p = await api<ProjectView>(cloud, `/projects/${await currentProject(name)}`);
      console.log(JSON.stringify(p, null, 2));
      // On a cloud with domain validation: the TXT record each custom domain of the local config needs.
      const fqdns = await localFqdns();
      if (fqdns.length) {
        const q = fqdns.map((f) => `fqdn=${encodeURIComponent(f)}`).join("&");
        const dv = await api<{ enabled: boolean; records: { name: string; type: string; value: string }[] }>(
          cloud,
          `/projects/${p.name}/dv?${q}`,
        );
        if (dv.enabled) {
          console.log("domain validation: publish these DNS records, then push again");
          for (const r of dv.records) console.log(`  ${r.name} ${r.type} "${r.value}"`);
        }
      }
    });

  program.command("builds [project]")
    .description("list build jobs with their status (newest first)")
    .option("--cloud <url>", "the cloud's URL")
    .option("--json", "print JSON")
    .action(async (name: string | undefined, opts: { cloud?: string; json?: boolean }) => {
      const project = await currentProject(name).catch(() => undefined);
      const jobs = await api<Job[]>(cloudUrl(opts.cloud), `/builds${project ? `?project=${project}` : ""}`);
      if (opts.json) return console.log(JSON.stringify(jobs, null, 2));
      if (!jobs.length) return console.log("no builds yet: push the config or code repo to start one");
      for (const j of jobs) {
        const took = j.finishedAt && j.startedAt ? `${Date.parse(j.finishedAt) - Date.parse(j.startedAt)} ms` : "";
        console.log(
          [
            j.id,
            j.project,
            `${j.repo}@${j.commit.slice(0, 8)}`,
            j.branch,
            j.status.padEnd(7),
            took,
            j.error ?? (j.supersededBy ? `built by ${j.supersededBy}` : ""),
          ]
            .join("  ").trimEnd(),
        );
      }
    });

  program.command("deployments [project]")
    .description("list a project's deployments (newest first); * marks the live one")
    .option("--cloud <url>", "the cloud's URL")
    .option("--branch <branch>", "branch", "main")
    .action(async (name: string | undefined, opts: { cloud?: string; branch: string }) => {
      const project = await currentProject(name);
      const d = await api<{ current: string | null; history: DeploymentRef[] }>(
        cloudUrl(opts.cloud),
        `/projects/${project}/deployments?branch=${encodeURIComponent(opts.branch)}`,
      );
      if (!d.history.length) return console.log(`${project} has no deployments on ${opts.branch}`);
      for (const r of d.history) {
        console.log(
          `${r.id === d.current ? "*" : " "} ${r.id}  config@${r.configCommit.slice(0, 8)}  ` +
            `code@${r.codeCommit?.slice(0, 8) ?? "-"}  build ${r.jobId}  ${r.createdAt}`,
        );
      }
    });

  program.command("rollback <project>")
    .description("serve an earlier deployment again (the previous one, or the one built from --to <commit>)")
    .option("--cloud <url>", "the cloud's URL")
    .option("--to <commit>", "commit (config or code, a prefix is enough) whose deployment to serve")
    .option("--branch <branch>", "branch", "main")
    .action(async (project: string, opts: { cloud?: string; to?: string; branch: string }) => {
      const res = await api<{ current: DeploymentRef }>(cloudUrl(opts.cloud), `/projects/${project}/rollback`, {
        method: "POST",
        json: { to: opts.to, branch: opts.branch },
      });
      const r = res.current;
      console.log(
        `${project}/${opts.branch} now serves deployment ${r.id} ` +
          `(config@${r.configCommit.slice(0, 8)}, code@${r.codeCommit?.slice(0, 8) ?? "-"}, build ${r.jobId})`,
      );
    });
}
