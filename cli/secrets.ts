/**
 * `tau secret set|ls|rm <project> NAME`: a project's secrets. A value is read from stdin when stdin is not a
 * terminal (one trailing newline dropped, so `echo "$TOKEN" | tau secret set ...` stores the token), else from a
 * prompt that does not echo; never from the command line, where shell history and `ps` would keep it.
 */
import type { Command } from "commander";
import { TauError } from "../runtime/errors.ts";
import { checkSecretName, MAX_SECRET_BYTES, type SecretInfo } from "../services/secrets/secrets.ts";
import { api, cloudUrl } from "./client.ts";

/** stdin to its end, refusing more than a secret may hold (never buffering without bound). */
async function readStdin(): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of Deno.stdin.readable) {
    chunks.push(chunk);
    total += chunk.length;
    if (total > MAX_SECRET_BYTES + 2) break;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) all.set(c, at), at += c.length;
  let end = all.length;
  if (end > 0 && all[end - 1] === 0x0a) end--;
  if (end > 0 && all[end - 1] === 0x0d) end--;
  return all.subarray(0, end);
}

/** One line typed at the terminal, not echoed. */
async function prompt(name: string): Promise<Uint8Array> {
  const enc = new TextEncoder();
  // Raw (no echo) before the prompt shows: what is typed as soon as it shows must not be echoed either.
  Deno.stdin.setRaw(true);
  const typed: number[] = [];
  try {
    await Deno.stderr.write(enc.encode(`value of ${name} (not shown): `));
    const buf = new Uint8Array(256);
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      for (const b of buf.subarray(0, n)) {
        if (b === 0x03) throw new TauError("cancelled", { hint: "nothing was stored" });
        if (b === 0x0d || b === 0x0a) return new Uint8Array(typed);
        if (b === 0x7f || b === 0x08) typed.pop();
        else typed.push(b);
        if (typed.length > MAX_SECRET_BYTES) return new Uint8Array(typed);
      }
    }
    return new Uint8Array(typed);
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(enc.encode("\n"));
  }
}

export async function setSecret(cloud: string, project: string, name: string): Promise<SecretInfo> {
  checkSecretName(name);
  const value = Deno.stdin.isTerminal() ? await prompt(name) : await readStdin();
  return await api<SecretInfo>(cloud, `/projects/${project}/secrets/${name}`, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: value as Uint8Array<ArrayBuffer>,
  });
}

export function registerSecretCommands(program: Command): void {
  const secret = program.command("secret").description("a project's secrets (values functions read; never in git)");
  secret.command("set")
    .description("set a secret: the value is read from stdin, or typed at a prompt that does not show it")
    .argument("<project>", "the project")
    .argument("<name>", "the secret's name, e.g. API_KEY")
    .option("--cloud <url>", "the cloud's URL")
    .allowExcessArguments(true)
    .action(async (project: string, name: string, opts: { cloud?: string }, cmd: Command) => {
      // The extra argument is likely the value itself: refused, and never repeated back.
      if (cmd.args.length > 2) {
        throw new TauError("tau secret set takes no value on the command line (shell history and ps would keep it)", {
          hint:
            `pipe it in: printf %s "$VALUE" | tau secret set ${project} ${name}, or run it without a value to be prompted`,
        });
      }
      const info = await setSecret(cloudUrl(opts.cloud), project, name);
      console.log(`secret ${info.name} set for project ${project}`);
    });
  secret.command("ls")
    .description("list a project's secrets: names and when each was set, never values")
    .argument("<project>", "the project")
    .option("--cloud <url>", "the cloud's URL")
    .option("--json", "print JSON")
    .action(async (project: string, opts: { cloud?: string; json?: boolean }) => {
      const res = await api<{ secrets: SecretInfo[] }>(cloudUrl(opts.cloud), `/projects/${project}/secrets`);
      if (opts.json) return console.log(JSON.stringify(res.secrets, null, 2));
      if (!res.secrets.length) return console.log(`${project} has no secrets: tau secret set ${project} NAME adds one`);
      for (const s of res.secrets) console.log(`${s.name}  set ${s.setAt}`);
    });
  secret.command("rm")
    .description("remove a secret")
    .argument("<project>", "the project")
    .argument("<name>", "the secret's name")
    .option("--cloud <url>", "the cloud's URL")
    .action(async (project: string, name: string, opts: { cloud?: string }) => {
      checkSecretName(name);
      await api(cloudUrl(opts.cloud), `/projects/${project}/secrets/${name}`, { method: "DELETE" });
      console.log(`secret ${name} removed from project ${project}`);
    });
}
