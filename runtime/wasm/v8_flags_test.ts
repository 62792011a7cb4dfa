import { assert } from "../../tests/helpers/assert.ts";
import { NODE_V8_FLAGS_ARG } from "./v8_flags.ts";

Deno.test("deno task dev and serve start the node with the V8 flags of v8_flags.ts", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  for (const task of ["dev", "serve"]) {
    const command: string = config.tasks[task].command;
    assert(command.includes(` ${NODE_V8_FLAGS_ARG} `), `deno.json task ${task} lacks ${NODE_V8_FLAGS_ARG}: ${command}`);
  }
});
