import type { Command } from "commander";

// Placeholder: tau new project, tau builds, tau logs, tau rollback.
export function registerProjectCommands(_program: Command, _newCommand: Command): void {}
