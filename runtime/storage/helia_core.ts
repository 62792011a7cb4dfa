/**
 * Helia's core class, loaded without the `helia` package's index. That index also imports @helia/libp2p with its
 * default network stack (kad-dht, WebRTC, WebSockets, TLS, AutoTLS with an ACME client, UPnP, mDNS, circuit relay) and
 * @helia/http's gateway clients, none of which a tau node runs: importing it cost +22.6 MB of V8 heap and +0.5 s of
 * start on top of everything else a node loads (measured: heap 21.5 -> 44.2 MB), against +0.3 MB and 17 ms for the
 * class alone. `createHeliaLight(init)` is `new Helia({ name, version, ...init })`, so this is the same object.
 *
 * The class is not in the package's exports map, so it is imported by its file next to the index. helia is pinned in
 * deno.json; a different version fails here at once with a clear error rather than later in an odd way.
 */
import type { Helia } from "helia";
import { TauError } from "../errors.ts";

const PINNED = "7.1.15";

type HeliaInit = { blockstore: unknown; datastore: unknown };
type HeliaClass = new (init: HeliaInit & { name: string; version: string }) => Helia;

let loaded: Promise<HeliaClass> | undefined;

/** `createHeliaLight` without the package index's imports. */
export async function createHeliaCore(init: HeliaInit): Promise<Helia> {
  const Class = await (loaded ??= load());
  return new Class({ name: "helia", version: PINNED, ...init });
}

async function load(): Promise<HeliaClass> {
  const index = import.meta.resolve("helia");
  const pkg = JSON.parse(await Deno.readTextFile(new URL("../../package.json", index)));
  if (pkg.version !== PINNED) {
    throw new TauError(`helia ${pkg.version} is installed; tau loads the core class of helia ${PINNED}`, {
      hint: "run deno task install (deno.json pins helia)",
    });
  }
  const mod = await import(new URL("./helia.js", index).href);
  if (typeof mod.Helia !== "function") throw new TauError(`helia ${PINNED} has no Helia class in dist/src/helia.js`);
  return mod.Helia as HeliaClass;
}
