// The scheduler's "once" on its own: two schedulers sharing one replica, as two nodes would through replication. When
// they agree on the live runners, the ticks spread over both and none runs twice; when their views disagree (each
// thinks it is alone, as right after a node joins), the claim in the state still lets only one run each tick.
// (tests/cron_test.ts runs real nodes.)
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import type { EventFunctions } from "../events/functions.ts";
import { ReplicaStore } from "../kvdb/mod.ts";
import { Kvdb } from "../kvdb/store.ts";
import type { DeploymentRecord, FunctionDeployment } from "../tns/records.ts";
import { startCron } from "./cron.ts";

const fn = {
  name: "tick",
  id: "fn-tick",
  trigger: { type: "cron", schedule: "@every 1s", catchup: false },
} as unknown as FunctionDeployment;
const record = { project: "p", functions: [fn] } as unknown as DeploymentRecord;

function events(ran: { node: string; at: number }[], node: string): EventFunctions {
  return {
    runsFunctions: true,
    newRequestId: () => "r",
    onChange: () => () => {},
    withTrigger: () => Promise.resolve([{ record, fn }]),
    invoke: (_r: DeploymentRecord, _f: FunctionDeployment, event: { at: number }) => {
      ran.push({ node, at: event.at });
      return Promise.resolve({ ok: true, status: 200, headers: [], body: new Uint8Array() });
    },
  } as unknown as EventFunctions;
}

async function run(runners: (self: string) => string[]): Promise<{ node: string; at: number }[]> {
  const kv = await Deno.openKv(":memory:");
  const state = new ReplicaStore(await Kvdb.open({ kv, writer: "test" }));
  const ran: { node: string; at: number }[] = [];
  const crons = ["a", "b"].map((self) =>
    startCron({ events: events(ran, self), state, self, runners: () => runners(self), log: () => {} })
  );
  await new Promise((r) => setTimeout(r, 3_500));
  for (const c of crons) c.close();
  await new Promise((r) => setTimeout(r, 100));
  kv.close();
  return ran;
}

function assertOnce(ran: { at: number }[]) {
  const ticks = ran.map((r) => r.at);
  assertEquals(ticks.length, new Set(ticks).size, `a tick ran twice: ${JSON.stringify(ran)}`);
  assert(ticks.length >= 2, `ticks ran: ${JSON.stringify(ran)}`);
}

Deno.test("cron scheduler: agreeing runners spread the ticks, none runs twice", async () => {
  const ran = await run(() => ["a", "b"]);
  assertOnce(ran);
});

Deno.test("cron scheduler: runners that disagree (each alone) still run each tick once, by the claim", async () => {
  const ran = await run((self) => [self]);
  assertOnce(ran);
});
