/** Every service of a node shares one Deno KV file under the data dir; each service owns its own key prefix. */
import { join } from "node:path";

export async function openNodeKv(dataDir: string): Promise<Deno.Kv> {
  await Deno.mkdir(dataDir, { recursive: true });
  return await Deno.openKv(join(dataDir, "node.kv"));
}
