import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { checkDomain, dvRecord, dvToken, newDvKeyPem, readDvKeys, verifyDvToken } from "./dv.ts";
import { TauError } from "../../runtime/errors.ts";

async function keysFrom(pems: { privatePem: string; publicPem: string }) {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/dv_private.pem`, pems.privatePem);
  await Deno.writeTextFile(`${dir}/dv_public.pem`, pems.publicPem);
  const keys = await readDvKeys(`${dir}/dv_private.pem`, `${dir}/dv_public.pem`);
  await Deno.remove(dir, { recursive: true });
  return keys;
}

Deno.test("a DV key derived from the swarm key is the same on every node; a token binds project and fqdn", async () => {
  const swarm = new TextEncoder().encode("/key/swarm/psk/1.0.0/\n/base16/\n" + "ab".repeat(32));
  const a = await newDvKeyPem(swarm);
  const b = await newDvKeyPem(swarm);
  assertEquals(a, b);
  const other = await newDvKeyPem();
  assert(other.privatePem !== a.privatePem, "without a swarm key the key is random");
  const keys = await keysFrom(a);
  const token = await dvToken(keys, "shop", "Shop.Example.com");
  assert(await verifyDvToken(keys, token, "shop", "shop.example.com"));
  assert(!(await verifyDvToken(keys, token, "other", "shop.example.com")), "another project");
  assert(!(await verifyDvToken(keys, token, "shop", "www.example.com")), "another name");
  assert(!(await verifyDvToken(await keysFrom(other), token, "shop", "shop.example.com")), "another cloud's key");
  const record = await dvRecord(keys, "shop", "shop.example.com");
  assertEquals(record.name, "_tau-dv.shop.example.com");
  assert(record.value.startsWith("tau-dv="));
});

Deno.test("generated names need the project id's last 8 characters, and no DNS record", async () => {
  const keys = await keysFrom(await newDvKeyPem());
  const opts = { keys, generated: "g.example.com" };
  const id = "2f1c3a4b-0000-4000-8000-00c0ffee1234";
  await checkDomain(opts, "shop", id, "shop-c0ffee1234.g.example.com");
  const err = await checkDomain(opts, "shop", id, "shop.g.example.com").catch((e) => e);
  assert(err instanceof TauError);
  assert(err.message.includes("does not contain ffee1234"), err.message);
});
