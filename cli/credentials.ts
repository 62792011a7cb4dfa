/**
 * The tokens `tau login` stored, one per cloud URL, in ~/.tau/credentials.json (or $TAU_HOME/credentials.json),
 * readable by its owner only. $TAU_TOKEN overrides them for one command.
 */
import { join } from "node:path";

function home(): string {
  return Deno.env.get("TAU_HOME") ?? join(Deno.env.get("HOME") ?? ".", ".tau");
}

export const credentialsFile = () => join(home(), "credentials.json");

type Credentials = { clouds: Record<string, string> };

export function normalizeCloud(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}

async function read(): Promise<Credentials> {
  try {
    return JSON.parse(await Deno.readTextFile(credentialsFile())) as Credentials;
  } catch {
    return { clouds: {} };
  }
}

export async function tokenFor(cloud: string): Promise<string | undefined> {
  const env = Deno.env.get("TAU_TOKEN");
  if (env) return env;
  try {
    return (await read()).clouds[normalizeCloud(cloud)];
  } catch {
    return undefined;
  }
}

export async function storeToken(cloud: string, token: string): Promise<string> {
  const creds = await read();
  creds.clouds[normalizeCloud(cloud)] = token;
  await Deno.mkdir(home(), { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(credentialsFile(), JSON.stringify(creds, null, 2) + "\n", { mode: 0o600 });
  await Deno.chmod(credentialsFile(), 0o600);
  return credentialsFile();
}
