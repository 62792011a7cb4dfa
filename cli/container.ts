import type { Command } from "commander";

// Placeholder: filled in by the container work (tau container ..., tau image ..., tau + app.yml).
export function registerContainerCommands(_program: Command): void {}
