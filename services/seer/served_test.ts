/** The served-name set (served.ts) against a scripted TNS: ownership, events, failures and retries. */
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { ServedNames, type ServedSource } from "./served.ts";
import type { DeploymentRecord } from "../tns/records.ts";

function record(project: string, fqdns: string[]): DeploymentRecord {
  return {
    project,
    branch: "main",
    commit: "c",
    configCommit: "c",
    jobId: "j",
    createdAt: "",
    functions: [],
    websites: [{ name: "site", id: "w", root: "cid", spa: false, routes: fqdns.map((fqdn) => ({ fqdn, path: "/" })) }],
  };
}

class ScriptedTns implements ServedSource {
  records: DeploymentRecord[] = [];
  owners = new Map<string, string>();
  failing = false;
  reads = 0;
  #listeners = new Set<(project: string, branch: string) => void>();
  onFlip(listener: (project: string, branch: string) => void) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  flip() {
    for (const l of this.#listeners) l("*", "*");
  }
  servedRecords() {
    this.reads++;
    return this.failing ? Promise.reject(new Error("no tns node is reachable")) : Promise.resolve(this.records);
  }
  resolveHost(fqdn: string) {
    const project = this.owners.get(fqdn);
    return Promise.resolve(project ? { project, branch: "main" } : null);
  }
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  assert(cond(), "condition not met within 5 s");
};

Deno.test("served names: only the owner's FQDNs, lower-cased, with their ancestors; events rebuild", async () => {
  const tns = new ScriptedTns();
  tns.records = [
    record("shop", ["Www.Shop.g.cloud.test", "taken.example.com"]),
    record("other", ["taken.example.com"]),
  ];
  tns.owners.set("Www.Shop.g.cloud.test", "shop").set("taken.example.com", "other");
  const served = new ServedNames(tns);
  await served.start();
  try {
    assertEquals(served.list(), ["taken.example.com", "www.shop.g.cloud.test"]);
    assert(
      served.hasBelow("shop.g.cloud.test") && served.hasBelow("cloud.test") &&
        !served.hasBelow("www.shop.g.cloud.test"),
    );
    const serial = served.serial();
    tns.records.push(record("new", ["new.g.cloud.test"]));
    tns.owners.set("new.g.cloud.test", "new");
    tns.flip();
    tns.flip(); // events arriving together make one rebuild
    await until(() => served.has("new.g.cloud.test"));
    assert(served.serial() > serial, "the SOA serial moves with the set");
  } finally {
    served.stop();
  }
});

Deno.test("served names: a failed read keeps the last set and is retried", async () => {
  const tns = new ScriptedTns();
  tns.records = [record("shop", ["shop.g.cloud.test"])];
  tns.owners.set("shop.g.cloud.test", "shop");
  const lines: string[] = [];
  const served = new ServedNames(tns, (l) => lines.push(l));
  await served.start();
  try {
    tns.failing = true;
    tns.records = [];
    tns.flip();
    await until(() => tns.reads >= 3); // retried, with back-off
    assert(served.has("shop.g.cloud.test"), "the last good set stays while TNS cannot be read");
    assertEquals(lines.filter((l) => l.includes("cannot read")).length, 1, "one log line per distinct failure");
    tns.failing = false;
    await until(() => !served.has("shop.g.cloud.test"));
  } finally {
    served.stop();
  }
});
