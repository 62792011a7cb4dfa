/**
 * `tau logs <build>` (a build's log) and `tau logs --follow <project> [--function NAME]` (every function's request
 * lines and output, from every node of the cloud, until Ctrl-C). One command for both, as a user expects `logs` to
 * be: the name is a project when one of that name exists, else a build id.
 */
import type { Command } from "commander";
import { TauError } from "../runtime/errors.ts";
import { api, cloudUrl, request } from "./client.ts";
import type { LogLine } from "../services/logs/bus.ts";

export function registerLogCommands(program: Command): void {
  program.command("logs <name>")
    .description(
      "a project's function logs from every node (request lines, output), streamed until Ctrl-C; or a build's log",
    )
    .option("--cloud <url>", "the cloud's URL")
    .option("-f, --follow", "keep streaming (a build: until it ends; a project's function logs always stream)")
    .option("--function <name>", "only this function's lines (app/name for an application's)")
    .action(async (name: string, opts: { cloud?: string; follow?: boolean; function?: string }) => {
      const cloud = cloudUrl(opts.cloud);
      if (opts.function || await isProject(cloud, name)) return await followFunctions(cloud, name, opts.function);
      let res: Response;
      try {
        res = await request(cloud, `/builds/${encodeURIComponent(name)}/log${opts.follow ? "?follow=1" : ""}`);
      } catch (err) {
        if (!(err instanceof TauError && err.status === 404)) throw err;
        throw new TauError(`no project or build named ${name} on ${cloud}`, {
          hint: "check the name: tau builds lists the builds, tau project NAME shows a project",
        });
      }
      await res.body?.pipeTo(Deno.stdout.writable, { preventClose: true });
    });
}

async function isProject(cloud: string, name: string): Promise<boolean> {
  try {
    await api(cloud, `/projects/${encodeURIComponent(name)}`);
    return true;
  } catch (err) {
    if (err instanceof TauError && err.status === 404) return false;
    throw err;
  }
}

/** One line per log line: `[node function] request: GET /hello 200 0.4ms (request id)`. */
export function formatLogLine(l: LogLine): string {
  return `[${l.node} ${l.fn}] ${l.stream}: ${l.text} (${l.requestId})`;
}

async function followFunctions(cloud: string, project: string, fn?: string): Promise<void> {
  const query = fn ? `?function=${encodeURIComponent(fn)}` : "";
  const res = await request(cloud, `/projects/${encodeURIComponent(project)}/logs${query}`);
  console.error(`following ${fn ? `function ${fn} of ` : ""}project ${project} on every node (Ctrl-C to stop)`);
  let rest = "";
  const out = new TextEncoder();
  for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop()!;
    for (const raw of lines) {
      if (!raw.trim()) continue; // keep-alive
      await Deno.stdout.write(out.encode(formatLogLine(JSON.parse(raw) as LogLine) + "\n"));
    }
  }
  throw new TauError(`the cloud at ${cloud} closed the log stream`, { hint: "run the command again to resume" });
}
