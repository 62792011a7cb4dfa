/**
 * The `tau drive` folder commands that need no host: init, and the host / shape / auth edits. Each edit checks the
 * reference it makes or breaks (a credential, a shape, a host named elsewhere) and refuses with one line naming where,
 * so a folder tau edited never gains a dangling reference; files are replaced atomically (temp file, rename).
 */
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { TauError } from "../../runtime/errors.ts";
import { SERVICES } from "../config/services.ts";
import { newSwarmKey, parseSwarmKey } from "../p2p/keys.ts";
import { newDvKeyPem } from "../dv/dv.ts";
import { type FileName, type Folder, isObject, lineOf, loadFolder, type YamlFile } from "./folder.ts";
import { addEntry, removeEntry } from "./edit.ts";
import { cidrProblem, isPort, splitHostPort } from "./net.ts";
import { shapePorts } from "./validate.ts";

const NAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9_-]*[a-zA-Z0-9])?$/;
const DOMAIN_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

function checkName(what: string, name: string): void {
  if (!NAME_RE.test(name)) {
    throw new TauError(`invalid ${what} name '${name}'`, { hint: "use letters, digits, - and _" });
  }
}

async function writeAtomic(path: string, text: string, mode?: number): Promise<void> {
  // The file keeps the mode it had (auth.yaml holds passwords: 0600 at least).
  try {
    mode = (await Deno.stat(path)).mode! & 0o777 & (mode ?? 0o777);
  } catch { /* a new file */ }
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, text, mode ? { mode } : undefined);
  await Deno.rename(tmp, path);
}

const where = (f: YamlFile, path: (string | number)[]) => `${f.path}${lineOf(f, path) ? `:${lineOf(f, path)}` : ""}`;

/** The folder with the files an edit needs, each parsed without error. */
async function openFor(dir: string, names: FileName[]): Promise<Folder & { file: (n: FileName) => YamlFile }> {
  const folder = await loadFolder(dir);
  for (const n of names) {
    const f = folder.files[n];
    if (!f) {
      throw new TauError(`${join(dir, n)} does not exist`, {
        hint: "is this a cloud folder? tau drive init writes one",
      });
    }
    if (f.error) {
      throw new TauError(`${f.path}${f.error.line ? `:${f.error.line}` : ""}: ${f.error.message}`, {
        hint: "fix the YAML first: tau edits only a file it can read",
      });
    }
  }
  return { ...folder, file: (n) => folder.files[n]! };
}

// ---- init ----------------------------------------------------------------------------------------------------

export interface InitOptions {
  dir: string;
  cloud: string;
  rootDomain: string;
  generatedDomain: string;
}

const CLOUD_YAML = (o: InitOptions) =>
  `# Cloud ${o.cloud}: its domains and how its nodes find each other (Spore Drive's format).
# Paths are relative to this folder. tau drive keeps your comments and layout when it edits these files.
domain:
  # The cloud's own domain, and the one generated names (functions, websites) live under.
  root: ${o.rootDomain}
  generated: ${o.generatedDomain}
  validation:
    # Custom domains prove ownership with a TXT record signed with this key pair.
    key:
      private: keys/dv_private.key
      public: keys/dv_public.key
p2p:
  swarm:
    # Only nodes holding this key join the cloud.
    key: keys/swarm.key
  # Per shape, the hosts whose nodes every other node dials first, e.g.
  #   all: [host1, host2]
  bootstrap: {}
`;

const HOSTS_YAML = `# The machines of the cloud. Add one with:
#   tau drive host add NAME --addr 10.0.0.5/24 --ssh 10.0.0.5:22 --auth CREDENTIAL --shape SHAPE
# Per host: addr (CIDRs), ssh {addr, port, auth: [credential names from auth.yaml]}, location {lat, long},
# shapes {<shape>: {key, id}} (tau writes a node's key and id when it generates them).
`;

const AUTH_YAML = `# SSH credentials hosts.yaml names. Add one with:
#   tau drive auth add NAME --username U --key keys/ssh.pem   (or --password-stdin)
`;

const SHAPES_YAML = `# What a node runs. Add one with:
#   tau drive shape add NAME --services ${SERVICES.join(",")} --port-main 4242 --port-lite 4262
`;

export async function initFolder(o: InitOptions): Promise<{ dir: string; files: string[] }> {
  checkName("cloud", o.cloud);
  for (const [flag, d] of [["--root-domain", o.rootDomain], ["--generated-domain", o.generatedDomain]]) {
    if (!DOMAIN_RE.test(d)) throw new TauError(`${flag} ${d} is not a domain name`, { hint: "e.g. example.com" });
  }
  let existing: Deno.DirEntry[] | undefined;
  try {
    existing = await Array.fromAsync(Deno.readDir(o.dir));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (existing?.length) {
    throw new TauError(`${o.dir} already exists and is not empty: tau drive init does not overwrite a cloud folder`, {
      hint: "edit it with tau drive host|shape|auth, or pick another name or --dir",
    });
  }
  await Deno.mkdir(join(o.dir, "keys"), { recursive: true, mode: 0o700 });
  const swarm = newSwarmKey();
  // The DV pair derived from the swarm key, as tau config generate --dv derives it: every node computes the same one.
  const dv = await newDvKeyPem(parseSwarmKey(swarm, "swarm key"));
  const files: [string, string, number?][] = [
    ["keys/swarm.key", swarm, 0o600],
    ["keys/dv_private.key", dv.privatePem, 0o600],
    ["keys/dv_public.key", dv.publicPem],
    ["cloud.yaml", CLOUD_YAML(o)],
    ["hosts.yaml", HOSTS_YAML],
    ["auth.yaml", AUTH_YAML, 0o600],
    ["shapes.yaml", SHAPES_YAML],
  ];
  for (const [name, text, mode] of files) {
    await Deno.writeTextFile(join(o.dir, name), text, mode ? { mode } : undefined);
  }
  return { dir: o.dir, files: files.map((f) => f[0]) };
}

// ---- hosts ---------------------------------------------------------------------------------------------------

export interface HostOptions {
  addr: string[];
  ssh: string;
  auth: string[];
  shapes: string[];
  /** "LAT,LONG" in degrees. */
  location?: string;
}

export async function addHost(dir: string, name: string, o: HostOptions): Promise<string> {
  checkName("host", name);
  const folder = await openFor(dir, ["hosts.yaml", "auth.yaml", "shapes.yaml"]);
  const hosts = folder.file("hosts.yaml"), auth = folder.file("auth.yaml"), shapes = folder.file("shapes.yaml");
  if (name in hosts.value) {
    throw new TauError(`host ${name} already exists (${where(hosts, [name])})`, {
      hint: `remove it first with tau drive host rm ${name}, or edit hosts.yaml`,
    });
  }
  if (!o.addr.length) throw new TauError("a host needs --addr CIDR", { hint: "e.g. --addr 10.0.0.5/24" });
  for (const a of o.addr) {
    const why = cidrProblem(a);
    if (why) throw new TauError(`--addr ${why}`, { hint: "give the host's address with its prefix, e.g. 10.0.0.5/24" });
  }
  const ssh = splitHostPort(o.ssh);
  if (!ssh) throw new TauError(`--ssh ${o.ssh} is not ADDR or ADDR:PORT`, { hint: "e.g. --ssh 10.0.0.5:22" });
  if (!o.auth.length) throw new TauError("a host needs --auth CREDENTIAL", { hint: "add one with tau drive auth add" });
  for (const c of o.auth) {
    if (!(c in auth.value)) {
      throw new TauError(`credential ${c} is not defined in ${auth.path}`, {
        hint: `add it first: tau drive auth add ${c} --username U --key FILE`,
      });
    }
  }
  const used = new Map<number, string>();
  for (const s of o.shapes) {
    if (!(s in shapes.value)) {
      throw new TauError(`shape ${s} is not defined in ${shapes.path}`, {
        hint: `add it first: tau drive shape add ${s} --services ... --port-main N --port-lite N`,
      });
    }
    for (const p of shapePorts(shapes.value[s])) {
      if (!isPort(p.value)) continue;
      const other = used.get(p.value);
      if (other) {
        throw new TauError(`shapes ${other} and ${s} both use port ${p.value}: one host cannot carry both`, {
          hint: "give one of them other ports in shapes.yaml, or put it on another host",
        });
      }
      used.set(p.value, s);
    }
  }
  let location: { lat: number; long: number } | undefined;
  if (o.location !== undefined) {
    const [lat, long, extra] = o.location.split(",").map((x) => x.trim() === "" ? NaN : Number(x));
    if (extra !== undefined || !(lat >= -90 && lat <= 90) || !(long >= -180 && long <= 180)) {
      throw new TauError(`--location ${o.location} is not LAT,LONG`, { hint: "degrees, e.g. --location 48.85,2.35" });
    }
    location = { lat, long };
  }
  const value: Record<string, unknown> = {
    addr: o.addr,
    ssh: { addr: ssh.addr, port: ssh.port ?? 22, auth: o.auth },
  };
  if (location) value.location = location;
  if (o.shapes.length) value.shapes = Object.fromEntries(o.shapes.map((s) => [s, {}]));
  await writeAtomic(hosts.path, addEntry(hosts, name, value));
  return hosts.path;
}

export async function removeHost(dir: string, name: string): Promise<string> {
  const folder = await openFor(dir, ["hosts.yaml", "cloud.yaml"]);
  const hosts = folder.file("hosts.yaml"), cloud = folder.file("cloud.yaml");
  if (!(name in hosts.value)) {
    throw new TauError(`host ${name} is not in ${hosts.path}`, { hint: "tau drive validate lists the hosts" });
  }
  const p2p = isObject(cloud.value.p2p) ? cloud.value.p2p : {};
  for (const [shape, list] of Object.entries(isObject(p2p.bootstrap) ? p2p.bootstrap : {})) {
    const i = Array.isArray(list) ? list.map(String).indexOf(name) : -1;
    if (i >= 0) {
      throw new TauError(
        `host ${name} is a bootstrap host of shape ${shape} (${where(cloud, ["p2p", "bootstrap", shape, i])})`,
        {
          hint: "remove it from p2p.bootstrap in cloud.yaml first",
        },
      );
    }
  }
  await writeAtomic(hosts.path, removeEntry(hosts, name));
  return hosts.path;
}

// ---- shapes --------------------------------------------------------------------------------------------------

export interface ShapeOptions {
  services: string[];
  ports: Record<string, number>;
  plugins?: string[];
}

export async function addShape(dir: string, name: string, o: ShapeOptions): Promise<string> {
  checkName("shape", name);
  const folder = await openFor(dir, ["shapes.yaml"]);
  const shapes = folder.file("shapes.yaml");
  if (name in shapes.value) {
    throw new TauError(`shape ${name} already exists (${where(shapes, [name])})`, {
      hint: `remove it first with tau drive shape rm ${name}, or edit shapes.yaml`,
    });
  }
  const unknown = o.services.filter((s) => !(SERVICES as readonly string[]).includes(s));
  if (unknown.length || !o.services.length) {
    throw new TauError(`unknown service${unknown.length > 1 ? "s" : ""} ${unknown.join(", ") || "(none given)"}`, {
      hint: `--services takes a comma list of ${SERVICES.join(", ")}`,
    });
  }
  const seen = new Map<number, string>();
  for (const [p, n] of Object.entries(o.ports)) {
    if (!isPort(n)) throw new TauError(`port ${p} ${n} is not a port`, { hint: "use 1-65535" });
    if (seen.has(n)) {
      throw new TauError(`ports ${seen.get(n)} and ${p} are both ${n}`, { hint: "give each port its own number" });
    }
    seen.set(n, p);
  }
  const value: Record<string, unknown> = { services: o.services, ports: o.ports };
  if (o.plugins?.length) value.plugins = o.plugins;
  await writeAtomic(shapes.path, addEntry(shapes, name, value));
  return shapes.path;
}

export async function removeShape(dir: string, name: string): Promise<string> {
  const folder = await openFor(dir, ["shapes.yaml", "hosts.yaml", "cloud.yaml"]);
  const shapes = folder.file("shapes.yaml"), hosts = folder.file("hosts.yaml"), cloud = folder.file("cloud.yaml");
  if (!(name in shapes.value)) {
    throw new TauError(`shape ${name} is not in ${shapes.path}`, { hint: "tau drive validate lists the shapes" });
  }
  for (const [host, h] of Object.entries(hosts.value)) {
    if (isObject(h) && isObject(h.shapes) && name in h.shapes) {
      throw new TauError(`host ${host} carries shape ${name} (${where(hosts, [host, "shapes", name])})`, {
        hint: `remove the shape from the host first (or the host: tau drive host rm ${host})`,
      });
    }
  }
  const p2p = isObject(cloud.value.p2p) ? cloud.value.p2p : {};
  if (isObject(p2p.bootstrap) && name in p2p.bootstrap) {
    throw new TauError(`shape ${name} has bootstrap hosts (${where(cloud, ["p2p", "bootstrap", name])})`, {
      hint: "remove it from p2p.bootstrap in cloud.yaml first",
    });
  }
  await writeAtomic(shapes.path, removeEntry(shapes, name));
  return shapes.path;
}

// ---- auth ----------------------------------------------------------------------------------------------------

export interface AuthOptions {
  username: string;
  password?: string;
  /** A key file: kept where it is when inside the folder, else copied to keys/. */
  key?: string;
}

export async function addAuth(dir: string, name: string, o: AuthOptions): Promise<{ file: string; copied?: string }> {
  checkName("credential", name);
  const folder = await openFor(dir, ["auth.yaml"]);
  const auth = folder.file("auth.yaml");
  if (name in auth.value) {
    throw new TauError(`credential ${name} already exists (${where(auth, [name])})`, {
      hint: "edit auth.yaml to change it",
    });
  }
  if (!o.username) throw new TauError("a credential needs --username", { hint: "the user SSH logs in as" });
  if ((o.password === undefined) === (o.key === undefined)) {
    throw new TauError("a credential takes one of --password-stdin or --key FILE", {
      hint: "a key is the safer choice",
    });
  }
  if (o.password !== undefined && !o.password) {
    throw new TauError("the password read from stdin is empty", { hint: 'echo "$PASSWORD" | tau drive auth add ...' });
  }
  let keyPath: string | undefined;
  let copied: string | undefined;
  if (o.key !== undefined) {
    const abs = resolve(o.key);
    let text: string;
    try {
      text = await Deno.readTextFile(abs);
    } catch {
      throw new TauError(`key file ${o.key} cannot be read`, { hint: "give the SSH private key's path" });
    }
    const rel = relative(resolve(dir), abs);
    if (!rel.startsWith("..") && !isAbsolute(rel)) keyPath = rel;
    else {
      keyPath = join("keys", abs.slice(dirname(abs).length + 1));
      const dest = join(dir, keyPath);
      let old: string | undefined;
      try {
        old = await Deno.readTextFile(dest);
      } catch { /* not there yet */ }
      if (old !== undefined && old !== text) {
        throw new TauError(`${dest} exists with other content`, {
          hint: "rename your key file, or remove the old one",
        });
      }
      await Deno.mkdir(join(dir, "keys"), { recursive: true, mode: 0o700 });
      await Deno.writeTextFile(dest, text, { mode: 0o600 });
      copied = dest;
    }
  }
  const value = keyPath !== undefined
    ? { username: o.username, key: keyPath }
    : { username: o.username, password: o.password };
  await writeAtomic(auth.path, addEntry(auth, name, value), 0o600);
  return { file: auth.path, copied };
}

export async function removeAuth(dir: string, name: string): Promise<string> {
  const folder = await openFor(dir, ["auth.yaml", "hosts.yaml"]);
  const auth = folder.file("auth.yaml"), hosts = folder.file("hosts.yaml");
  if (!(name in auth.value)) throw new TauError(`credential ${name} is not in ${auth.path}`);
  for (const [host, h] of Object.entries(hosts.value)) {
    const list = isObject(h) && isObject(h.ssh) && Array.isArray(h.ssh.auth) ? h.ssh.auth.map(String) : [];
    if (list.includes(name)) {
      throw new TauError(
        `host ${host} logs in with ${name} (${where(hosts, [host, "ssh", "auth", list.indexOf(name)])})`,
        {
          hint: `remove the host first (tau drive host rm ${host}) or give it another credential`,
        },
      );
    }
  }
  await writeAtomic(auth.path, removeEntry(auth, name), 0o600);
  return auth.path;
}
