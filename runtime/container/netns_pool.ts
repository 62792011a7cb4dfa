/**
 * A pool of pre-made network namespaces (helper/netns.c says how one is made, claimed and released, and what a
 * container in one can and cannot do). Making a network namespace is the largest single cost of a start: ~1.1 ms of
 * CPU, part of it serialized in the kernel, so 100 clones at once waited ~140 ms on namespaces alone. A runtime
 * opened with `netnsPool: N` keeps up to N made ahead, refilled in the background after each start that used some;
 * `close()` releases them. A start that finds the pool empty makes a fresh namespace, as before, so a pool only
 * ever makes starts faster. Each idle namespace holds ~170 KiB of kernel memory (measured: +17 MiB of slab for 100).
 *
 * The pool lives in `<data>/run/.netns`, one directory per namespace; several tau processes on one data dir share
 * it (a CLI `clone` uses what the node made), and a claim is a rename, so no two starts ever get the same one.
 */

export class NetnsPool {
  readonly dir: string;
  #filling: Promise<void> | null = null;
  #closed = false;

  /** `target`: how many to keep made (0: none are made here, but made ones are still used). */
  constructor(runRoot: string, readonly helper: string, readonly target = 0) {
    this.dir = `${runRoot}/.netns`;
  }

  /** Names of the namespaces ready to be claimed (those being made start with "."). */
  async free(): Promise<string[]> {
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) if (e.isDirectory && !e.name.startsWith(".")) names.push(e.name);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return names;
  }

  /**
   * Moves one free namespace to `<dir>/net` for each container state dir in `dirs`, as many as there are; a
   * container left without one (pool empty, or another tau took it first) gets a fresh namespace from the helper.
   */
  async claim(dirs: string[]): Promise<number> {
    const names = await this.free();
    const results = await Promise.all(
      dirs.slice(0, names.length).map((d, i) =>
        Deno.rename(`${this.dir}/${names[i]}`, `${d}/net`).then(() => true, (err) => {
          if (err instanceof Deno.errors.NotFound) return false;
          throw err;
        })
      ),
    );
    return results.filter(Boolean).length;
  }

  /** Makes namespaces until `target` are free; one fill at a time per pool. Resolves when done. */
  fill(target = this.target): Promise<void> {
    if (this.#filling) return this.#filling.then(() => this.#closed ? undefined : this.fill(target));
    this.#filling = (async () => {
      const missing = target - (await this.free()).length;
      if (missing <= 0 || this.#closed) return;
      const out = await new Deno.Command(this.helper, {
        args: ["netns-fill", this.dir, String(missing)],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) {
        throw new Error(
          `cannot make network namespaces in ${this.dir}: ${new TextDecoder().decode(out.stderr).trim()}`,
        );
      }
    })().finally(() => (this.#filling = null));
    return this.#filling;
  }

  /** After starts that used the pool: refill in the background (errors only mean slower starts; they are logged). */
  refill(): void {
    if (this.target <= 0 || this.#closed || this.#filling) return;
    this.fill().catch((err) => console.error(`tau: ${(err as Error).message}`));
  }

  /** Releases a claimed namespace a start did not use (the helper releases those it joins). */
  async releaseClaimed(containerDir: string): Promise<void> {
    if (await Deno.lstat(`${containerDir}/net/ns`).then(() => true, () => false)) {
      await this.#release([`${containerDir}/net/ns`]);
    }
  }

  /**
   * Shutdown: stops refilling and releases every free namespace. Also clears what a killed fill left half made
   * (`.new-<pid>-*` of a process that is gone).
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#filling?.catch(() => {});
    await this.#release((await this.free()).map((n) => `${this.dir}/${n}/ns`));
    await this.collectGarbage();
  }

  /** Half-made entries of fills that were killed. */
  async collectGarbage(): Promise<void> {
    const stale: string[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        const pid = e.name.match(/^\.new-(\d+)-/)?.[1];
        if (pid && !(await Deno.stat(`/proc/${pid}`).then(() => true, () => false))) {
          stale.push(`${this.dir}/${e.name}/ns`);
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    await this.#release(stale);
  }

  async #release(files: string[]): Promise<void> {
    if (files.length === 0) return;
    const out = await new Deno.Command(this.helper, { args: ["netns-release", ...files], stderr: "piped" }).output();
    if (!out.success) {
      throw new Error(`cannot release network namespaces: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
  }
}
