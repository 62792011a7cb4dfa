/** The CLI's view of a cloud: its HTTP API, with remote TauErrors turned back into local ones. */
import { TauError } from "../runtime/errors.ts";
import { tokenFor } from "./credentials.ts";

export const DEFAULT_CLOUD = "http://127.0.0.1:8080";

export function cloudUrl(opt?: string): string {
  return (opt ?? Deno.env.get("TAU_CLOUD") ?? DEFAULT_CLOUD).replace(/\/+$/, "");
}

export async function api<T>(cloud: string, path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const res = await request(cloud, path, init);
  return await res.json() as T;
}

export async function request(
  cloud: string,
  path: string,
  init: RequestInit & { json?: unknown } = {},
): Promise<Response> {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined) headers.set("content-type", "application/json");
  const token = await tokenFor(cloud);
  if (token) headers.set("authorization", `Bearer ${token}`);
  let res: Response;
  try {
    res = await fetch(`${cloud}/api${path}`, {
      ...rest,
      headers,
      body: json !== undefined ? JSON.stringify(json) : rest.body,
    });
  } catch (err) {
    throw new TauError(`cannot reach the cloud at ${cloud}`, {
      hint: "start the local cloud with `deno task dev`, or pass --cloud URL",
      detail: String(err),
    });
  }
  if (!res.ok) {
    const text = await res.text();
    let body: { error?: string; hint?: string; detail?: string } = {};
    try {
      body = JSON.parse(text);
    } catch { /* not JSON: use the text */ }
    throw new TauError(body.error ?? `${res.status} ${text.trim()}`, {
      hint: body.hint,
      detail: body.detail,
      status: res.status,
    });
  }
  return res;
}

/** The project a command is about: the argument, else config/config.yaml found walking up from the cwd. */
export async function currentProject(arg?: string): Promise<string> {
  if (arg) return arg;
  let dir = Deno.cwd();
  for (let i = 0; i < 20; i++) {
    for (const candidate of [`${dir}/config/config.yaml`, `${dir}/config.yaml`]) {
      try {
        const text = await Deno.readTextFile(candidate);
        const m = text.match(/^name:\s*["']?([a-z][a-z0-9_]*)["']?\s*$/m);
        if (m) return m[1];
      } catch { /* keep walking */ }
    }
    const parent = dir.replace(/\/[^/]+$/, "") || "/";
    if (parent === dir) break;
    dir = parent;
  }
  throw new TauError("no project given and none found from the current folder", {
    hint: "pass the project name, or run inside a project folder (the one holding config/)",
  });
}
