/**
 * Where `<data>/run` (container state: records, logs, sockets, overlay upper/work dirs) lives. Containers start
 * and write far faster on a tmpfs than on a journaling disk (creating an overlay's dirs and files on the host ext4
 * was most of a start), and their state is meaningless after a reboot anyway, as runtimes that keep it under /run
 * do. So `<data>/run` becomes a symlink to a per-data-dir directory on a tmpfs: TAU_CONTAINER_RUN if set, else
 * /dev/shm when it is a tmpfs; otherwise `<data>/run` is a plain directory. Images stay on disk.
 */
export function tmpfsRunRoot(dataDir: string, mountinfo: string): string | null {
  const fromEnv = Deno.env.get("TAU_CONTAINER_RUN");
  if (fromEnv) return `${fromEnv.replace(/\/+$/, "")}/${dirKey(dataDir)}`;
  const shmIsTmpfs = mountinfo.split("\n").some((line) => {
    const [pre, post] = line.split(" - ");
    return post?.startsWith("tmpfs ") && pre.split(" ")[4] === "/dev/shm";
  });
  return shmIsTmpfs ? `/dev/shm/tau-containers/${dirKey(dataDir)}` : null;
}

/** Makes `<data>/run` (an existing one, link or directory, is kept) and returns its real path. */
export async function ensureRunDir(dataDir: string): Promise<string> {
  const link = `${dataDir}/run`;
  const st = await Deno.lstat(link).catch(() => null);
  if (st?.isSymlink) {
    // After a reboot the tmpfs is empty: the link dangles until its target is made again.
    const target = await Deno.readLink(link);
    await Deno.mkdir(target.startsWith("/") ? target : `${dataDir}/${target}`, { recursive: true });
  } else if (!st) {
    const target = tmpfsRunRoot(dataDir, await Deno.readTextFile("/proc/self/mountinfo").catch(() => ""));
    if (target) {
      await Deno.mkdir(target, { recursive: true });
      // Another tau may have won the race: its link is as good as ours.
      await Deno.symlink(target, link).catch((err) => {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      });
    } else {
      await Deno.mkdir(link, { recursive: true });
    }
  }
  return await Deno.realPath(link);
}

/** A short stable name per data dir, so two data dirs never share (or clean up) each other's state. */
function dirKey(dataDir: string): string {
  let h = 0x811c9dc5;
  for (const ch of new TextEncoder().encode(dataDir)) h = Math.imul(h ^ ch, 0x01000193) >>> 0;
  const tail = dataDir.split("/").filter(Boolean).slice(-2).join("-").replace(/[^a-zA-Z0-9_.-]/g, "_");
  return `${tail}-${h.toString(16).padStart(8, "0")}`;
}
