/**
 * auth: the registry of projects and their repositories. A project is registered once; its config and code repos
 * live in the cloud's git hosting (or are mirrored from an external git host, fed by signed webhooks).
 *
 * Keys (Deno KV, prefix "auth"):
 *   ["auth", "project", name] -> Project
 */
import { TauError } from "../../runtime/errors.ts";
import { nameProblem } from "../../runtime/schema/fields.ts";
import type { GitHosting } from "../git/hosting.ts";

export interface Project {
  id: string;
  name: string;
  createdAt: string;
  /** HMAC-SHA256 key for external webhooks (X-Hub-Signature-256). */
  webhookSecret: string;
  repos: { config: RepoInfo; code: RepoInfo };
}

export interface RepoInfo {
  name: "config" | "code";
  /** Set when the repo's source of truth is another git host: pushes there reach us through the webhook. */
  upstream?: string;
}

/** Project names follow the config schema's one naming rule (snake_case), with its suggestion in the hint. */
export function checkProjectName(name: string): void {
  const problem = nameProblem(name, "project name");
  if (problem) {
    const [message, example] = problem.split(", e.g. ");
    throw new TauError(message, { hint: example ? `try: ${example}` : "start with a letter; use a-z, 0-9 and _" });
  }
}

export class Auth {
  #kv: Deno.Kv;
  #git: GitHosting;

  constructor(kv: Deno.Kv, git: GitHosting) {
    this.#kv = kv;
    this.#git = git;
  }

  async createProject(
    name: string,
    opts: { description?: string; upstreams?: { config?: string; code?: string } } = {},
  ): Promise<Project> {
    checkProjectName(name);
    const key = ["auth", "project", name];
    if ((await this.#kv.get(key)).value) {
      throw new TauError(`project ${name} already exists`, { status: 409, hint: `clone it: tau clone ${name}` });
    }
    const project: Project = {
      id: crypto.randomUUID(),
      name,
      createdAt: new Date().toISOString(),
      webhookSecret: toHex(crypto.getRandomValues(new Uint8Array(24))),
      repos: {
        config: { name: "config", upstream: opts.upstreams?.config },
        code: { name: "code", upstream: opts.upstreams?.code },
      },
    };
    // The config repo starts with its config.yaml so that a fresh clone is already a valid project.
    const configYaml = [
      `id: ${project.id}`,
      `name: ${name}`,
      `description: ${JSON.stringify(opts.description ?? "")}`,
      "tags: []",
      "",
    ].join("\n");
    const initial = {
      config: { "config.yaml": configYaml },
      code: {
        "README.md": `# ${name} code\n\nfunctions/<name>/ holds each function's code; websites/<name>/ each website.\n`,
      },
    };
    for (const repo of ["config", "code"] as const) {
      if (await this.#git.exists(name, repo)) continue;
      const upstream = project.repos[repo].upstream;
      // A mirrored repo starts as a copy of its upstream; pushes there reach us through the signed webhook.
      if (upstream) await this.#git.createMirror(name, repo, upstream);
      else await this.#git.createRepo(name, repo, initial[repo]);
    }
    const res = await this.#kv.atomic().check({ key, versionstamp: null }).set(key, project).commit();
    if (!res.ok) throw new TauError(`project ${name} already exists`, { status: 409 });
    return project;
  }

  async getProject(name: string): Promise<Project> {
    const project = (await this.#kv.get<Project>(["auth", "project", name])).value;
    if (!project) {
      throw new TauError(`project ${name} does not exist`, {
        status: 404,
        hint: `create it with: tau new project ${name}`,
      });
    }
    return project;
  }

  async listProjects(): Promise<Project[]> {
    const out: Project[] = [];
    for await (const e of this.#kv.list<Project>({ prefix: ["auth", "project"] })) out.push(e.value);
    return out;
  }
}

function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
