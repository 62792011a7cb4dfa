/**
 * auth: the registry of projects and their repositories. A project is registered once; its config and code repos
 * live in the cloud's git hosting (or are mirrored from an external git host, fed by signed webhooks).
 *
 * Keys (the cloud's replicated store, services/kvdb; first part "auth"):
 *   ["auth", "project", name] -> Project
 * Creating a project is check-then-write: two nodes creating the same name within one push round trip would both
 * succeed, and the later write wins everywhere (last-writer-wins); the API is loopback/admin-only, so that race is an
 * operator racing themselves.
 */
import { TauError } from "../../runtime/errors.ts";
import { nameProblem } from "../../runtime/schema/fields.ts";
import type { GitHosting } from "../git/hosting.ts";
import type { StateStore } from "../kvdb/mod.ts";

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
  #state: StateStore;
  #git: GitHosting;

  constructor(state: StateStore, git: GitHosting) {
    this.#state = state;
    this.#git = git;
  }

  async createProject(
    name: string,
    opts: { description?: string; upstreams?: { config?: string; code?: string } } = {},
  ): Promise<Project> {
    checkProjectName(name);
    const key = ["auth", "project", name];
    if (await this.#state.get(key)) {
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
    if (await this.#state.get(key)) throw new TauError(`project ${name} already exists`, { status: 409 });
    await this.#state.set(key, project);
    return project;
  }

  async getProject(name: string): Promise<Project> {
    const project = await this.#state.get<Project>(["auth", "project", name]);
    if (!project) {
      throw new TauError(`project ${name} does not exist`, {
        status: 404,
        hint: `create it with: tau new project ${name}`,
      });
    }
    return project;
  }

  async listProjects(): Promise<Project[]> {
    return (await this.#state.list<Project>(["auth", "project"])).map((e) => e.value);
  }
}

function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
