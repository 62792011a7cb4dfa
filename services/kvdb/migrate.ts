/**
 * Data dirs written before TNS, auth and patrick moved onto the replicated store kept their keys straight in Deno KV. On the
 * first start with the new layout they are copied into the store and the old keys removed, so an upgraded `tau dev`
 * serves and lists everything it did before. Runs once: afterwards there is nothing left to copy.
 *   ["tns","deploy",...]          -> the same key
 *   ["tns","current",p,b] = id    -> { id }
 *   ["tns","host",reversedFqdn]   -> the owning project's claim ["tns","claim",fqdn,project]
 *   ["auth","project",name]       -> the same key
 *   ["patrick","job",id], ["patrick","by_project",p,id] -> the same keys (open jobs also get ["patrick","open",p,id])
 */
import type { Kvdb } from "./store.ts";

export async function adoptOldKeys(kv: Deno.Kv, db: Kvdb): Promise<number> {
  const old: Deno.KvKey[] = [];
  for (const prefix of [["tns"], ["auth"], ["patrick"]]) {
    for await (const e of kv.list<unknown>({ prefix })) {
      const [service, kind, ...rest] = e.key as string[];
      if (service === "tns" && kind === "deploy") await db.set(e.key as string[], e.value);
      else if (service === "tns" && kind === "current") await db.set(e.key as string[], { id: e.value as string });
      else if (service === "tns" && kind === "host") {
        const fqdn = rest[0].split(".").reverse().join(".");
        await db.set(["tns", "claim", fqdn, (e.value as { project: string }).project], { active: true });
      } else if (service === "auth" && kind === "project") await db.set(e.key as string[], e.value);
      else if (service === "patrick" && kind === "by_project") await db.set(e.key as string[], true);
      else if (service === "patrick" && kind === "job") {
        const job = e.value as { id: string; project: string; status: string };
        await db.set(e.key as string[], job);
        if (job.status === "queued" || job.status === "running") {
          await db.set(["patrick", "open", job.project, job.id], true);
        }
      } else continue;
      old.push(e.key);
    }
  }
  for (const key of old) await kv.delete(key);
  return old.length;
}
