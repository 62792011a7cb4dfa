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
import { PROJECT_NAME_RE } from "../../runtime/schema/fields.ts";
import { checkUpstreamUrl } from "../../runtime/git/upstream.ts";
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

/**
 * A project name is a folder, a KV key and (later) a DNS label: 63 characters, like a label. Without a cap a long
 * name reached Deno KV and failed there ("Key too large", a 500).
 */
export const MAX_PROJECT_NAME = 63;

/** Why a project name is refused (PROJECT_NAME_RE: stricter than a resource name, which may start with a capital). */
function projectNameProblem(name: string): string | undefined {
  if (PROJECT_NAME_RE.test(name)) return undefined;
  const suggestion = name.toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^[^a-z]+/, "");
  return `invalid project name '${name}': use snake_case` + (suggestion ? `, e.g. ${suggestion}` : "");
}

/** Project names are lowercase snake_case, with a suggestion in the hint. */
export function checkProjectName(name: string): void {
  if (name.length > MAX_PROJECT_NAME) {
    throw new TauError(`project name is ${name.length} characters long; at most ${MAX_PROJECT_NAME}`, {
      hint: "choose a shorter snake_case name",
    });
  }
  const problem = projectNameProblem(name);
  if (problem) {
    const [message, example] = problem.split(", e.g. ");
    throw new TauError(message, { hint: example ? `try: ${example}` : "start with a letter; use a-z, 0-9 and _" });
  }
}

export class Auth {
  #state: StateStore;
  #git: GitHosting;
  /** Names being created in this process: a failed creation removes its repos, never another request's. */
  #creating = new Set<string>();

  constructor(state: StateStore, git: GitHosting) {
    this.#state = state;
    this.#git = git;
  }

  async createProject(
    name: string,
    opts: { description?: string; upstreams?: { config?: string; code?: string } } = {},
  ): Promise<Project> {
    checkProjectName(name);
    // Upstreams are checked before anything is created: a refused one leaves no repo and no project behind.
    const upstreams = {
      config: opts.upstreams?.config ? checkUpstreamUrl(opts.upstreams.config, "config upstream") : undefined,
      code: opts.upstreams?.code ? checkUpstreamUrl(opts.upstreams.code, "code upstream") : undefined,
    };
    if (this.#creating.has(name)) throw new TauError(`project ${name} is being created`, { status: 409 });
    this.#creating.add(name);
    try {
      return await this.#create(name, opts.description, upstreams);
    } finally {
      this.#creating.delete(name);
    }
  }

  async #create(
    name: string,
    description: string | undefined,
    upstreams: { config?: string; code?: string },
  ): Promise<Project> {
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
        config: { name: "config", upstream: upstreams.config },
        code: { name: "code", upstream: upstreams.code },
      },
    };
    // The config repo starts with its config.yaml so that a fresh clone is already a valid project.
    const configYaml = [
      `id: ${project.id}`,
      `name: ${name}`,
      `description: ${JSON.stringify(description ?? "")}`,
      "tags: []",
      "",
    ].join("\n");
    const initial = {
      config: { "config.yaml": configYaml },
      code: {
        "README.md": `# ${name} code\n\nfunctions/<name>/ holds each function's code; websites/<name>/ each website.\n`,
      },
    };
    try {
      for (const repo of ["config", "code"] as const) {
        if (await this.#git.exists(name, repo)) continue;
        const upstream = project.repos[repo].upstream;
        // A mirrored repo starts as a copy of its upstream; pushes there reach us through the signed webhook.
        if (upstream) await this.#git.createMirror(name, repo, upstream);
        else await this.#git.createRepo(name, repo, initial[repo]);
      }
    } catch (err) {
      // An unreachable upstream: the project does not exist, so neither may its repos (a retry starts clean).
      await this.#git.removeProjectRepos(name);
      throw err;
    }
    if (await this.#state.get(key)) throw new TauError(`project ${name} already exists`, { status: 409 });
    // On a cloud the new repos reach the other auth nodes before the project exists for anyone.
    for (const repo of ["config", "code"] as const) await this.#git.announce(name, repo);
    await this.#state.set(key, project);
    return project;
  }

  async getProject(name: string): Promise<Project> {
    // A name that cannot exist must not reach the store (a too-long key is an internal error in Deno KV).
    const project = name.length <= MAX_PROJECT_NAME ? await this.#state.get<Project>(["auth", "project", name]) : null;
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
