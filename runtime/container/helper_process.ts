/** Spawning the helper's `run` mode and reading its status pipe (JSON lines). */
import { TauError } from "../errors.ts";
import type { StatusEvent } from "./records.ts";

export interface HelperRun {
  started: StatusEvent;
  /** resolves with the "exited" event when `follow` was asked for */
  exited?: Promise<StatusEvent>;
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
  if (buf) yield buf;
}

/**
 * Starts the helper detached (it must outlive a CLI invocation of tau) and waits for "started" or "error".
 * Without `follow`, tau then closes its end of the pipe; the helper keeps writing to its status file.
 */
export async function spawnHelperRun(helper: string, args: string[], follow: boolean): Promise<HelperRun> {
  const child = new Deno.Command(helper, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  // Read stderr by hand so it can be cancelled: forwarders keep a copy open as long as the container runs.
  const errReader = child.stderr.getReader();
  let stderrText = "";
  const errDone = (async () => {
    const dec = new TextDecoder();
    for (;;) {
      const r = await errReader.read().catch(() => ({ done: true, value: undefined }));
      if (r.done) return;
      if (stderrText.length < 8192) stderrText += dec.decode(r.value);
    }
  })();
  const it = lines(child.stdout);
  let started: StatusEvent | undefined;
  for (;;) {
    const next = await it.next();
    if (next.done) break;
    const ev = JSON.parse(next.value) as StatusEvent;
    if (ev.event === "started") {
      started = ev;
      break;
    }
    if (ev.event === "error") {
      await child.status;
      throw new TauError(`container failed to start: ${ev.message}`, { hint: hintFor(ev.message ?? "") });
    }
  }
  if (!started) {
    const status = await child.status;
    await errDone;
    throw new TauError(`container helper exited (code ${status.code}) before the container started`, {
      detail: stderrText,
    });
  }
  await errReader.cancel().catch(() => {});
  if (!follow) {
    await it.return(undefined);
    child.unref();
    return { started };
  }
  const exited = (async () => {
    for await (const line of it) {
      const ev = JSON.parse(line) as StatusEvent;
      if (ev.event === "exited") {
        await child.status;
        return ev;
      }
    }
    const status = await child.status;
    return { event: "exited", code: status.code } as StatusEvent;
  })();
  return { started, exited };
}

function hintFor(message: string): string | undefined {
  if (message.includes("command not found")) return "check `command` in the Statefile, or the image's Cmd";
  if (message.includes("already in use")) return "pick another host port, or leave it out to get a free one";
  if (message.includes("cannot be mapped into") || message.includes("into the user namespace")) {
    return "containers get a user namespace (docs/containers.md); on a filesystem that cannot be idmapped, set " +
      "TAU_CONTAINER_USERNS=off";
  }
  if (message.includes("mount source")) return "create the source path on the host or fix the Statefile";
  if (message.includes("Operation not permitted")) return "tau needs root (and namespaces) to run containers";
  return undefined;
}

/**
 * `run --batch`: one helper forks a supervisor per id; each reports "started" or "error" with its id on the
 * shared pipe. Returns once every id has reported (or the pipe closed: missing ids are errors).
 */
export async function spawnHelperBatch(
  helper: string,
  args: string[],
  ids: string[],
): Promise<Map<string, StatusEvent | Error>> {
  const child = new Deno.Command(helper, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    detached: true,
  }).spawn();
  const out = new Map<string, StatusEvent | Error>();
  const it = lines(child.stdout);
  while (out.size < ids.length) {
    const next = await it.next();
    if (next.done) break;
    const ev = JSON.parse(next.value) as StatusEvent;
    if (!ev.id || out.has(ev.id)) continue;
    if (ev.event === "started") out.set(ev.id, ev);
    else if (ev.event === "error") {
      out.set(ev.id, new TauError(`container failed to start: ${ev.message}`, { hint: hintFor(ev.message ?? "") }));
    }
  }
  // The supervisors keep the pipe open while their containers run; they go on writing to their status files.
  await it.return(undefined);
  await child.status;
  for (const id of ids) {
    if (!out.has(id)) out.set(id, new TauError(`container ${id}: the helper exited before starting it`));
  }
  return out;
}
