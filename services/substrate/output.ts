/** A deployed container's output, line by line, to the node's terminal (`tau dev`). */
import type { ContainerRuntime } from "../../runtime/container/runtime.ts";

/**
 * Streams the container's output to `echo` until it exits (the driver polls it, so this ends with the container)
 * or `stopped()` says the node is closing. `fromEnd` skips what was printed before (an adopted container).
 */
export function followOutput(
  rt: ContainerRuntime,
  id: string,
  name: string,
  fromEnd: boolean,
  echo: (container: string, line: string) => void,
  stopped: () => boolean,
): void {
  (async () => {
    const dec = new TextDecoder();
    let pending = "";
    for await (const chunk of rt.logs(id, true, fromEnd)) {
      if (stopped()) return;
      pending += dec.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) echo(name, line);
    }
    if (pending) echo(name, pending);
  })().catch(() => {}); // the container was removed under us: nothing more to print
}
