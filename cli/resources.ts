import type { Command } from "commander";

// Placeholder: filled in by the resources work (tau new function|website|domain|library|application, tau validate).
export function registerResourceCommands(_program: Command, _newCommand: Command): void {}
