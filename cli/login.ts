/**
 * `tau login --cloud URL --token T`: keeps the cloud's admin token for the CLI (Authorization: Bearer) and for git
 * (a credential helper for that URL: `tau git-credential`, which answers git's credential protocol from the same file).
 */
import type { Command } from "commander";
import { TauError } from "../runtime/errors.ts";
import { request } from "./client.ts";
import { normalizeCloud, storeToken, tokenFor } from "./credentials.ts";

/** How git should run this CLI: the compiled binary itself, or deno with this entry point. */
function selfCommand(): string {
  const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const main = new URL("../main.ts", import.meta.url);
  if (main.protocol !== "file:") return quote(Deno.execPath());
  return `${quote(Deno.execPath())} run -A ${quote(main.pathname)}`;
}

export function registerLoginCommands(program: Command): void {
  program.command("login")
    .description("keep a cloud's admin token, so tau and git reach its API and repos from this machine")
    .requiredOption("--cloud <url>", "the node's URL, e.g. http://10.0.0.1:80")
    .requiredOption("--token <token>", "the cloud's admin token (keys/admin.token on any of its nodes)")
    .action(async (o: { cloud: string; token: string }) => {
      const cloud = normalizeCloud(o.cloud);
      Deno.env.set("TAU_TOKEN", o.token);
      await request(cloud, "/nodes").catch((err) => {
        throw new TauError(`the token was not accepted by ${cloud}: ${(err as Error).message}`, {
          hint: "copy keys/admin.token from one of the cloud's nodes",
        });
      });
      const file = await storeToken(cloud, o.token);
      const helper = `!${selfCommand()} git-credential`;
      const out = await new Deno.Command("git", {
        args: ["config", "--global", "--replace-all", `credential.${cloud}.helper`, helper],
        stdout: "null",
        stderr: "piped",
      }).output();
      console.log(`logged in to ${cloud} (token kept in ${file})`);
      if (out.success) console.log(`git: credential helper set for ${cloud} in your global git config`);
      else console.log(`git: could not set a credential helper: ${new TextDecoder().decode(out.stderr).trim()}`);
    });
  // git's credential helper protocol: key=value lines on stdin; for `get`, print username and password.
  program.command("git-credential", { hidden: true })
    .argument("<operation>", "get, store or erase")
    .action(async (operation: string) => {
      if (operation !== "get") return;
      const text = await new Response(Deno.stdin.readable).text();
      const fields = Object.fromEntries(
        text.split("\n").filter((l) => l.includes("=")).map((l) => {
          const i = l.indexOf("=");
          return [l.slice(0, i), l.slice(i + 1)];
        }),
      );
      if (!fields.protocol || !fields.host) return;
      const token = await tokenFor(`${fields.protocol}://${fields.host}`);
      if (token) console.log(`username=tau\npassword=${token}\n`);
    });
}
