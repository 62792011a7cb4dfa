/** The WebAssembly function runtime: public API used by the gateway (invoke) and the build (compile, prepare). */
export type { EventResult, FunctionLimits, FunctionLogLine, FunctionTarget, LoadModule } from "./types.ts";
export { eventHeaders, eventInput } from "./event_input.ts";
export type { CallInput, FunctionEvent } from "./outcome.ts";
export { FunctionRuntime } from "./runtime.ts";
export type { FunctionRuntimeOptions } from "./runtime.ts";
export { prepareModule } from "./prepare.ts";
export { compileAssemblyScript } from "./compile_as.ts";
export { ModuleBuilder } from "./builder.ts";
