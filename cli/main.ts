/**
 * Argument parsing only: every command calls functions that the tests call too.
 * Each command group lives in its own file and registers itself on the program.
 */
import { Command, CommanderError } from "commander";
import { formatError } from "../runtime/errors.ts";
import { registerCloudCommands } from "./cloud.ts";
import { registerProjectCommands } from "./project.ts";
import { registerResourceCommands } from "./resources.ts";
import { registerContainerCommands } from "./container.ts";
import { registerConfigCommands } from "./config.ts";
import { registerNodeCommands } from "./nodes.ts";
import { registerLoginCommands } from "./login.ts";
import { registerLogCommands } from "./logs.ts";
import { registerSecretCommands } from "./secrets.ts";
import { registerCallCommands } from "./call.ts";
import { registerDriveCommands } from "./drive.ts";

export async function run(args: string[]): Promise<number> {
  const program = new Command("tau")
    .description("tau: a git-native edge platform")
    .option("--verbose", "show error details and debug output")
    .exitOverride()
    .configureOutput({ writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)) });
  // `tau new project` (cloud side) and `tau new function|website|...` (config repo side) share one parent.
  const newCommand = program.command("new").description("create a project or a resource");
  registerCloudCommands(program);
  registerProjectCommands(program, newCommand);
  registerResourceCommands(program, newCommand);
  registerContainerCommands(program);
  registerConfigCommands(program);
  registerNodeCommands(program);
  registerLoginCommands(program);
  registerLogCommands(program);
  registerSecretCommands(program);
  registerCallCommands(program);
  registerDriveCommands(program);
  const verbose = args.includes("--verbose");
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its message (unknown option, missing argument, --help).
      return err.exitCode === 0 ? 0 : 2;
    }
    console.error(formatError(err, verbose));
    return 1;
  }
}
