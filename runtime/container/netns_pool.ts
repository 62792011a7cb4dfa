/**
 * A pool of pre-made network namespaces (helper/netns.c says how it works and what a container in one can and cannot
 * do). Making a network namespace is the largest single cost of a start: ~1.1 ms of CPU, part of it serialized in
 * the kernel. A runtime opened with `netnsPool: N` runs the pool: one helper process holding up to N namespaces as
 * descriptors and handing each to one container start, making more when starts pause. `close()` ends it, and it ends
 * by itself when this process does (its stdin is a pipe from here), taking what it holds along: nothing can leak.
 * A start that finds no pool, or an empty one, makes a fresh namespace as before, so a pool only makes starts faster.
 * Each idle namespace holds ~170 KiB of kernel memory (measured: +17 MiB of slab for 100).
 *
 * The pool answers on `<data>/run/netns.sock`, so every tau process on the data dir uses it (a CLI `clone` takes what
 * the node made); only the process that opened the runtime with a pool runs it.
 */

export class NetnsPool {
  readonly socket: string;
  #holder: Deno.ChildProcess | null = null;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | null = null;

  /** `target`: how many to keep made (0: no pool is run here, one run by another tau is still used). */
  constructor(runRoot: string, readonly helper: string, readonly target = 0) {
    this.socket = `${runRoot}/netns.sock`;
  }

  /** Starts the pool process (when there is a target and it is not running); it fills itself in the background. */
  start(): void {
    if (this.target <= 0 || this.#holder) return;
    this.#holder = new Deno.Command(this.helper, {
      args: ["netns-pool", this.socket, String(this.target)],
      stdin: "piped",
      stdout: "null",
      stderr: "inherit", // one line when it cannot make a namespace; starts then make their own
    }).spawn();
    this.#stdin = this.#holder.stdin.getWriter();
    this.#holder.unref();
  }

  /** Whether a pool answers on the socket (this process's or another's): starts then ask it first. */
  async running(): Promise<boolean> {
    return await Deno.lstat(this.socket).then(() => true, () => false);
  }

  /** How many namespaces the pool holds ready; 0 when no pool answers. */
  async free(): Promise<number> {
    let conn: Deno.UnixConn | null = null;
    try {
      conn = await Deno.connect({ transport: "unix", path: this.socket });
      await conn.write(new Uint8Array([0x73])); // "s": status
      const buf = new Uint8Array(64);
      let text = "";
      for (let n; !text.includes("\n") && (n = await conn.read(buf)) !== null;) {
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      return Number(text.split(" ")[0]) || 0;
    } catch {
      return 0;
    } finally {
      conn?.close();
    }
  }

  /** Resolves once the pool holds `target` namespaces (benchmarks, tests); bounded by `timeoutMs`. */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.free()) < this.target) {
      if (Date.now() > deadline) {
        throw new Error(`the network namespace pool did not reach ${this.target} within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Ends the pool process; the namespaces it holds are freed with it. */
  async close(): Promise<void> {
    const holder = this.#holder;
    if (!holder) return;
    this.#holder = null;
    await this.#stdin?.close().catch(() => {}); // EOF: the pool exits and removes its socket
    this.#stdin = null;
    holder.ref(); // waited for below: an unref'd child would let Deno exit first
    await holder.status;
  }
}
