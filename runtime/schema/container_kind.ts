/**
 * `containers/<name>.yaml`: a Statefile (see runtime/container/statefile.ts) plus `domains` and `paths`, deployed
 * through git like a function. Each Statefile field is read by the Statefile's own reader, so `tau container run`
 * and a project deploy accept exactly the same values with the same messages. Two Statefile fields are refused on
 * purpose: `mounts` (a push must not reach into the node's file system) and host ports (the gateway reaches the
 * container through a Unix socket, so nothing listens on the node's TCP ports).
 */
import { TauError } from "../errors.ts";
import type { Limits } from "../container/cgroups.ts";
import { readCommand, readEnv, readLimits, readPort, readReplicas } from "../container/statefile.ts";
import { prefixPathItem, refItem, routePathProblem } from "./checks.ts";
import { duration, type Field, list, type Path, pathText, type ReadContext, requiredText, text } from "./fields.ts";
import type { KindSpec } from "./kinds.ts";
import type { ContainerResource } from "./types.ts";

/** A field whose value the Statefile reader checks; its TauError becomes a config issue on that line. */
function statefileField<T>(doc: string, reader: (raw: unknown, where: string) => T, def?: () => T): Field<T> {
  return {
    doc,
    defaultValue: def,
    read(raw: unknown, path: Path, ctx: ReadContext) {
      try {
        return reader(raw, pathText(path));
      } catch (err) {
        if (!(err instanceof TauError)) throw err;
        ctx.issue(path, err.hint ? `${err.message} (${err.hint})` : err.message);
        return undefined;
      }
    },
  };
}

/**
 * What a deployed container gets for each limit its `limits` leaves out: a push must not be able to take the node's
 * memory or its pid space (a fork bomb). `tau container run` keeps "no limit means unlimited", like other
 * runtimes: whoever runs it owns the machine. cpus has no default: a CPU quota only shares time, and the kernel's
 * scheduler already shares it fairly between containers.
 */
export const DEPLOYED_DEFAULT_LIMITS = { memoryBytes: 512_000_000, pids: 1024 } as const;

function withDefaultLimits(raw: unknown, where: string): Limits {
  return { ...DEPLOYED_DEFAULT_LIMITS, ...readLimits(raw, where) };
}

const refused = (doc: string, why: string): Field<never> => ({
  doc,
  read(_raw, path, ctx) {
    ctx.issue(path, `${pathText(path)}: ${why}`);
    return undefined;
  },
});

export function containerKind(common: KindSpec["shape"]): KindSpec {
  return {
    kind: "container",
    folder: "containers",
    doc: "A container (Statefile fields) served on domains and path prefixes through the gateway.",
    shape: {
      ...common,
      container: requiredText("Image reference, as `tau image ls` shows it.", "busybox:latest"),
      port: statefileField("The HTTP port the container listens on (inside its own network namespace).", readPort),
      ports: refused(
        "Not available in projects.",
        "a deployed container serves one HTTP port: write `port: 8080` (the gateway reaches it over a Unix socket)",
      ),
      command: statefileField("Command and arguments; the image's entrypoint and cmd when empty.", readCommand),
      env: statefileField("Environment variables.", readEnv, () => ({})),
      limits: {
        ...statefileField(
          "{memory, cpus, pids}, e.g. {memory: 64MB, cpus: 0.5}; memory and pids have defaults.",
          withDefaultLimits,
          () => ({ ...DEPLOYED_DEFAULT_LIMITS }),
        ),
        defaultText: "`{memory: 512MB, pids: 1024}`",
      },
      replicas: statefileField("Copies to run; requests are spread over them.", readReplicas, () => 1),
      workdir: text("Working directory inside the container."),
      hostname: text("Host name inside the container."),
      mounts: refused(
        "Not available in projects.",
        "containers deployed from git cannot mount host paths; build the files into the image, or pass settings in env",
      ),
      readiness: {
        doc: "When a new container counts as started: it answers `path` on `port`, within `timeout`.",
        fields: {
          path: text("Path asked; any HTTP answer counts.", "/", (v) => routePathProblem(v, false)),
          timeout: duration("How long it may take; longer fails the deploy.", "30s", { min: 100, max: 10 * 60_000 }),
        },
      },
      domains: list("Names of domain resources.", { unique: true, item: refItem("domain") }),
      paths: list("Path prefixes proxied to the container.", { def: ["/"], unique: true, item: prefixPathItem }),
    },
    build: (v, base): ContainerResource => ({
      kind: "container",
      ...base,
      description: v.description,
      tags: v.tags,
      image: v.container,
      ...(v.port !== undefined ? { port: v.port } : {}),
      ...(v.command ? { command: v.command } : {}),
      env: v.env,
      limits: v.limits,
      replicas: v.replicas,
      ...(v.workdir ? { workdir: v.workdir } : {}),
      ...(v.hostname ? { hostname: v.hostname } : {}),
      readiness: { path: v.readiness.path, timeoutMs: v.readiness.timeout },
      domains: v.domains,
      paths: v.paths,
    }),
  };
}
