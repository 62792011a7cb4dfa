/**
 * Starter code written by `tau new`. Kept apart from the scaffolder so the SDK's API can change here alone.
 * The function template targets the AssemblyScript SDK (sdk/assemblyscript/index.ts, imported as "tau-sdk").
 */

export function functionTemplate(call: string, method: string, path: string): string {
  return `// Entry point for ${method === "*" ? "any method" : method} ${path}: tau calls the exported \`${call}\`.
import { Request, Response } from "tau-sdk";

export function ${call}(): void {
  const req = new Request();
  new Response()
    .status(200)
    .header("content-type", "text/plain")
    .send("hello from ${call}: " + req.method + " " + req.path + "\\n");
}
`;
}

export function wasmReadme(name: string, call: string): string {
  return `# ${name}

Drop your .wasm here (one module, e.g. \`${name}.wasm\`). tau serves it as it is: no build step.
The module must export \`${call}\` (set \`execution.call\` in the function's YAML to change it).
`;
}

export function websiteTemplate(name: string, dir: string): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>${name}</title>
  </head>
  <body>
    <h1>${name}</h1>
    <p>Served by tau. Edit code/${dir}/index.html, or put a build step's output in build/.</p>
  </body>
</html>
`;
}

export function libraryTemplate(name: string): string {
  return `// Library ${name}: functions with \`source: libraries/${name}\` are built from this folder; each one calls
// the export named by its \`execution.call\` (by default the function's name).
import { Request, Response } from "tau-sdk";

export function ${name}(): void {
  const req = new Request();
  new Response().status(200).send("hello from library ${name}: " + req.path + "\\n");
}
`;
}
