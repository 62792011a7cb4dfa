/**
 * Data dirs written before TNS moved onto the replicated store kept its keys straight in Deno KV
 * (["tns","deploy",...], ["tns","current",...], ["tns","host",reversedFqdn]). On the first start with the new layout
 * they are copied into the store (host entries become the owning project's claims) and the old keys removed, so an
 * upgraded `tau dev` serves everything it served before. Runs once: afterwards there is nothing left to copy.
 */
import type { Kvdb } from "../kvdb/store.ts";
import type { DeploymentRef } from "./records.ts";

export async function migrateTns(kv: Deno.Kv, db: Kvdb): Promise<number> {
  let moved = 0;
  const old: Deno.KvKey[] = [];
  for await (const e of kv.list<unknown>({ prefix: ["tns"] })) {
    const [, kind, ...rest] = e.key as string[];
    if (kind === "deploy") {
      await db.set(["tns", "deploy", ...rest], e.value as DeploymentRef);
    } else if (kind === "current") {
      await db.set(["tns", "current", ...rest], { id: e.value as string });
    } else if (kind === "host") {
      const owner = e.value as { project: string };
      const fqdn = rest[0].split(".").reverse().join(".");
      await db.set(["tns", "claim", fqdn, owner.project], { active: true });
    } else continue;
    old.push(e.key);
    moved++;
  }
  for (const key of old) await kv.delete(key);
  return moved;
}
