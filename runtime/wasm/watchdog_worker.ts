/**
 * Watchdog Worker (see watchdog.ts): polls the serving thread's beat, reports a guest call that holds the thread,
 * and kills the process once one has held it for exitAfterMs.
 */
/// <reference lib="deno.worker" />
import { BEAT_GUEST, BEAT_SEQ, BEAT_STALLS, type WatchdogInit, type WatchdogMessage } from "./watchdog.ts";

const guests = new Map<number, { name: string; key: string }>();
let beat: Int32Array;
let opts: WatchdogInit;
let lastSeq = -1;
let polls = 0;
let reported = false;

function poll() {
  const seq = Atomics.load(beat, BEAT_SEQ);
  if ((seq & 1) === 0 || seq !== lastSeq) {
    lastSeq = seq;
    polls = 0;
    reported = false;
    return;
  }
  polls++;
  const heldMs = polls * opts.pollMs;
  const guest = guests.get(Atomics.load(beat, BEAT_GUEST));
  const who = guest ? `function ${guest.name} (module ${guest.key})` : "a function";
  if (!reported && heldMs >= opts.stallMs) {
    reported = true;
    Atomics.add(beat, BEAT_STALLS, 1);
    console.error(`tau watchdog: ${who} has held the serving thread for ${heldMs} ms; every request waits for it`);
  }
  if (opts.exitAfterMs !== null && heldMs >= opts.exitAfterMs) {
    if (guest && opts.quarantineFile) {
      try {
        Deno.writeTextFileSync(opts.quarantineFile, guest.key + "\n", { append: true });
      } catch { /* the exit below matters more than the record */ }
    }
    console.error(
      `tau watchdog: ${who} has held the serving thread for ${heldMs} ms; stopping the node so that it can be ` +
        `restarted (the module will run only on executor workers)`,
    );
    Deno.kill(Deno.pid, "SIGKILL");
  }
}

self.onmessage = (e: MessageEvent<WatchdogInit | WatchdogMessage>) => {
  const msg = e.data;
  if ("beat" in msg) {
    opts = msg;
    beat = new Int32Array(msg.beat);
    setInterval(poll, msg.pollMs);
    self.postMessage("watching");
  } else guests.set(msg.guest, { name: msg.name, key: msg.key });
};
