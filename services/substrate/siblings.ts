/**
 * "Containers of one project may talk through shared Unix sockets": for every served container with a port, the
 * node listens on `<siblings dir>/<name>.sock` (mounted read-only at /run/tau in each container of the project)
 * and proxies to the current deployment's replicas, so a sibling's address survives its redeploys and restarts.
 */
import type { ContainerRuntime } from "../../runtime/container/runtime.ts";
import type { ContainerDeployment, DeploymentRecord } from "../tns/records.ts";
import { siblingSocketName } from "./spec.ts";

/** Where every project's sibling sockets live, under the container data dir. */
export function siblingsRoot(rt: ContainerRuntime): string {
  return `${rt.dataDir}/siblings`;
}

export function siblingsDir(root: string, project: string): string {
  return `${root}/${project}`;
}

type Proxy = (req: Request, c: ContainerDeployment, requestId: string) => Promise<Response>;

export class SiblingSockets {
  /** by socket path; `current` follows the served deployment of that name */
  #served = new Map<string, { server: Deno.HttpServer; current: ContainerDeployment }>();
  #requests = 0;

  constructor(readonly proxy: Proxy, readonly log: (line: string) => void) {}

  /** Serves exactly the sockets `records` (the served deployments) call for. */
  async sync(root: string, records: DeploymentRecord[]): Promise<void> {
    const want = new Map<string, ContainerDeployment>();
    for (const r of records) {
      for (const c of r.containers ?? []) {
        if (c.port) want.set(`${siblingsDir(root, r.project)}/${siblingSocketName(c)}`, c);
      }
    }
    for (const [path, svc] of this.#served) {
      if (want.has(path)) continue;
      this.#served.delete(path);
      await svc.server.shutdown().catch(() => {});
      await Deno.remove(path).catch(() => {});
    }
    for (const [path, c] of want) {
      const svc = this.#served.get(path);
      if (svc) {
        svc.current = c;
        continue;
      }
      if (path.length > 107) {
        this.log(`no sibling socket for container ${c.name}: ${path} is longer than a Unix socket path may be`);
        continue;
      }
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await Deno.remove(path).catch(() => {}); // left by a node that was killed
      const entry: { server: Deno.HttpServer; current: ContainerDeployment } = {
        current: c,
        server: Deno.serve(
          { path, onListen: () => {} },
          (req): Promise<Response> => this.proxy(req, entry.current, `sibling-${(this.#requests++).toString(36)}`),
        ),
      };
      // Processes in containers may run as any user: anyone who can see the socket may connect to it.
      await Deno.chmod(path, 0o666);
      this.#served.set(path, entry);
    }
  }

  async close(): Promise<void> {
    for (const [path, svc] of this.#served) {
      await svc.server.shutdown().catch(() => {});
      await Deno.remove(path).catch(() => {});
    }
    this.#served.clear();
  }
}
