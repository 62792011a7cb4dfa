/**
 * External git hosts tell us about pushes with a signed webhook (GitHub's format: X-Hub-Signature-256 =
 * "sha256=" + hex HMAC-SHA256 of the raw body with the project's webhook secret). A verified push to a mirrored repo
 * is fetched from its upstream first; then it enters patrick exactly like a push to our own git hosting.
 */
import { TauError } from "../../runtime/errors.ts";
import { git } from "../../runtime/git/git.ts";
import type { Auth } from "../auth/projects.ts";
import type { GitHosting, PushEvent } from "../git/hosting.ts";

interface PushPayload {
  ref?: string;
  after?: string;
  repository?: { name?: string; full_name?: string; clone_url?: string };
}

export async function verifySignature(secret: string, body: Uint8Array, header: string | null): Promise<boolean> {
  if (!header?.startsWith("sha256=")) return false;
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body as Uint8Array<ArrayBuffer>));
  const expected = [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
  const given = header.slice(7).toLowerCase();
  // Constant-time comparison: the secret must not leak through response timing.
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ (given.charCodeAt(i) || 0);
  return diff === 0;
}

/** Returns the push event to build, or null when the payload is not a branch push (tag, branch deletion, ping). */
export async function acceptWebhook(
  projectName: string,
  body: Uint8Array,
  signature: string | null,
  deps: { auth: Auth; git: GitHosting },
): Promise<PushEvent | null> {
  const project = await deps.auth.getProject(projectName);
  if (!(await verifySignature(project.webhookSecret, body, signature))) {
    throw new TauError(`webhook for ${projectName} rejected: bad or missing X-Hub-Signature-256`, {
      status: 401,
      hint: "sign the body with the project's webhook secret (tau project show prints it)",
    });
  }
  let payload: PushPayload;
  try {
    payload = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new TauError("webhook body is not JSON", { status: 400 });
  }
  const branch = payload.ref?.startsWith("refs/heads/") ? payload.ref.slice(11) : undefined;
  const commit = payload.after;
  if (!branch || !commit || /^0+$/.test(commit)) return null;
  if (!/^[0-9a-f]{40}$/.test(commit)) throw new TauError(`webhook: 'after' is not a commit id`, { status: 400 });

  const repos = [project.repos.config, project.repos.code];
  const url = payload.repository?.clone_url;
  const name = payload.repository?.name ?? "";
  const repo = repos.find((r) => r.upstream && url && r.upstream === url) ??
    repos.find((r) =>
      name === r.name || name.endsWith(`/${r.name}`) || payload.repository?.full_name === `${projectName}/${r.name}`
    );
  if (!repo) {
    throw new TauError(`webhook: repository ${url ?? name} is not one of ${projectName}'s repos`, { status: 422 });
  }
  const path = deps.git.repoPath(projectName, repo.name);
  if (repo.upstream) await deps.git.fetchUpstream(projectName, repo.name, repo.upstream);
  try {
    await git(["cat-file", "-e", `${commit}^{commit}`], { cwd: path });
  } catch {
    throw new TauError(`webhook: commit ${commit.slice(0, 12)} is not in ${projectName}/${repo.name}`, {
      status: 422,
      hint: repo.upstream ? "check that the upstream has it" : "push it to the cloud's git first",
    });
  }
  return { project: projectName, repo: repo.name, branch, commit, source: "webhook" };
}
