import type { Command } from "commander";

// Placeholder: tau dev / tau serve.
export function registerCloudCommands(_program: Command): void {}
