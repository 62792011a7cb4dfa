/**
 * The cloud folder as typed values, for the commands that act on it (plot, displace, status). It is read only from a
 * folder that validates: a problem is a TauError with the first problem's file and line.
 */
import { join } from "node:path";
import { TauError } from "../../runtime/errors.ts";
import { isObject, loadFolder } from "./folder.ts";
import { formatIssue, shapePorts, validateFolder } from "./validate.ts";

export interface Credential {
  name: string;
  username: string;
  password?: string;
  /** Absolute path of the SSH private key. */
  keyFile?: string;
}

export interface Shape {
  name: string;
  services: string[];
  /** Every declared port by name ("main", "lite", tau's own like "http"). */
  ports: Record<string, number>;
  plugins: string[];
}

export interface HostNode {
  shape: string;
  /** The node's libp2p private key (base64 protobuf) and peer id, when generated. */
  key?: string;
  id?: string;
}

export interface Host {
  name: string;
  /** CIDRs; the first one's address is where the host's nodes listen and are reached. */
  addr: string[];
  ssh: { addr: string; port: number; auth: string[] };
  location?: { lat: number; long: number };
  nodes: HostNode[];
}

export interface CloudModel {
  dir: string;
  domain: { root: string; generated: string; dv?: { privateKeyFile: string; publicKeyFile: string } };
  swarmKeyFile?: string;
  /** shape -> hosts whose node of that shape the others dial first. */
  bootstrap: Record<string, string[]>;
  hosts: Host[];
  shapes: Shape[];
  credentials: Credential[];
}

export async function readCloud(dir: string): Promise<CloudModel> {
  const folder = await loadFolder(dir);
  const report = await validateFolder(folder);
  if (report.problems.length) {
    const n = report.problems.length;
    throw new TauError(`${formatIssue(report.problems[0])}${n > 1 ? ` (and ${n - 1} more)` : ""}`, {
      hint: `tau drive validate --dir ${dir} lists every problem`,
    });
  }
  const v = (name: "cloud.yaml" | "hosts.yaml" | "auth.yaml" | "shapes.yaml") => folder.files[name]!.value;
  const obj = (x: unknown) => isObject(x) ? x : {};
  const strs = (x: unknown) => Array.isArray(x) ? x.map(String) : [];
  const abs = (p: unknown) => join(dir, String(p));
  const cloud = v("cloud.yaml");
  const domain = obj(cloud.domain), dvKey = obj(obj(domain.validation).key), p2p = obj(cloud.p2p);
  return {
    dir,
    domain: {
      root: String(domain.root),
      generated: String(domain.generated),
      dv: dvKey.private && dvKey.public
        ? { privateKeyFile: abs(dvKey.private), publicKeyFile: abs(dvKey.public) }
        : undefined,
    },
    swarmKeyFile: obj(p2p.swarm).key ? abs(obj(p2p.swarm).key) : undefined,
    bootstrap: Object.fromEntries(Object.entries(obj(p2p.bootstrap)).map(([s, l]) => [s, strs(l)])),
    hosts: Object.entries(v("hosts.yaml")).map(([name, h]) => {
      const host = obj(h), ssh = obj(host.ssh), loc = obj(host.location);
      return {
        name,
        addr: strs(host.addr),
        ssh: { addr: String(ssh.addr), port: typeof ssh.port === "number" ? ssh.port : 22, auth: strs(ssh.auth) },
        location: typeof loc.lat === "number" && typeof loc.long === "number"
          ? { lat: loc.lat, long: loc.long }
          : undefined,
        nodes: Object.entries(obj(host.shapes)).map(([shape, i]) => {
          const inst = obj(i);
          return {
            shape,
            key: typeof inst.key === "string" ? inst.key : undefined,
            id: typeof inst.id === "string" ? inst.id : undefined,
          };
        }),
      };
    }),
    shapes: Object.entries(v("shapes.yaml")).map(([name, s]) => ({
      name,
      services: strs(obj(s).services),
      ports: Object.fromEntries(shapePorts(s).map((p) => [p.name, p.value as number])),
      plugins: strs(obj(s).plugins),
    })),
    credentials: Object.entries(v("auth.yaml")).map(([name, c]) => {
      const cred = obj(c);
      return {
        name,
        username: String(cred.username),
        password: cred.password !== undefined && cred.password !== null ? String(cred.password) : undefined,
        keyFile: cred.key !== undefined ? abs(cred.key) : undefined,
      };
    }),
  };
}
