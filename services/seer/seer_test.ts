/** Seer's memory of live addresses (seer.ts LiveAddresses) against a scripted directory: exact, never stale. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { DEAD_AFTER_MS, type DirectoryEntry } from "../p2p/directory.ts";
import { LiveAddresses } from "./seer.ts";
import type { ServiceName } from "../config/shape.ts";

class ScriptedDirectory {
  entries: DirectoryEntry[] = [];
  walks = 0;
  #listeners = new Set<(e: DirectoryEntry) => void>();
  peersFor(service: ServiceName) {
    this.walks++;
    const now = Date.now();
    return this.entries.filter((e) => now - e.seen <= DEAD_AFTER_MS && e.services.includes(service));
  }
  onChange(l: (e: DirectoryEntry) => void) {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
  hear(e: DirectoryEntry) {
    this.entries = [...this.entries.filter((x) => x.peer !== e.peer), e];
    for (const l of this.#listeners) l(e);
  }
}

const entry = (peer: string, ip: string, seen: number): DirectoryEntry => ({
  peer,
  ip,
  seen,
  alive: true,
  cloud: "c",
  shape: "s",
  services: ["gateway"],
  addrs: [],
  http: "",
  load: 0,
  freeDiskBytes: 0,
  rssBytes: 0,
  startedAt: 0,
  at: 0,
});

Deno.test("live addresses: remembered between queries, dropped on news and the moment a node turns dead", async () => {
  const dir = new ScriptedDirectory();
  const live = new LiveAddresses(dir);
  try {
    const now = Date.now();
    dir.hear(entry("a", "127.0.0.11", now));
    dir.hear(entry("b", "127.0.0.12", now - DEAD_AFTER_MS + 150)); // b turns dead in 150 ms
    assertEquals(live.of("gateway"), ["127.0.0.11", "127.0.0.12"]);
    const walks = dir.walks;
    for (let i = 0; i < 100; i++) live.of("gateway");
    assertEquals(dir.walks, walks, "one walk of the directory serves many queries");
    dir.hear(entry("c", "127.0.0.13", Date.now()));
    assertEquals(live.of("gateway"), ["127.0.0.11", "127.0.0.12", "127.0.0.13"], "an announcement shows at once");
    await new Promise((r) => setTimeout(r, 200));
    assertEquals(live.of("gateway"), ["127.0.0.11", "127.0.0.13"], "a node is gone as soon as it is dead");
  } finally {
    live.stop();
  }
});
