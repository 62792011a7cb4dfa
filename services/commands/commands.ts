/**
 * P2P commands: a command names a project, one of its protocols and a command; the function of that project whose
 * trigger is `{type: p2p, protocol, command}` answers it, and its response body is the answer. Who sends: `tau call`
 * (the node API), and functions (Taubyte's p2p calls, HostServices.p2p). Every node knows which function answers
 * (TNS is the same everywhere), so an unknown protocol or command is refused where the command is sent, before any
 * hop. A node that runs substrate answers its own commands; a node that does not, or a command addressed `to`
 * another peer, crosses to a live substrate node over libp2p (remote.ts: one RPC protocol, /tau/command/1.0.0).
 * `tau dev` is one node ("local") with no libp2p: everything is answered in process.
 */
import { TauError } from "../../runtime/errors.ts";
import { HostError, type HostErrorCode, type P2pOps } from "../../runtime/wasm/host/services.ts";
import type { EventFunctions } from "../events/functions.ts";
// Type only: the cluster's modules (libp2p) load only on a cloud; remote.ts is imported by computed specifier.
import type { Cluster } from "../cluster/cluster.ts";
import type { DeploymentRecord, FunctionDeployment } from "../tns/records.ts";

/**
 * Largest command data and largest answer: 4 MiB. A command and its answer cross nodes whole, in one RPC frame
 * (rpc.ts caps a frame at 8 MiB), and sit whole in the host and in the guest's memory; they fit under the API's
 * 5 MB body cap too, so `tau call --data -` can send the largest. Bulk data belongs in a storage (send its name).
 */
export const MAX_COMMAND_BYTES = 4 << 20;
/** How long past the answering function's own timeout a remote answer may take (a hop, a cold start). */
const REMOTE_GRACE_MS = 5_000;

export type CommandFailure = "protocol" | "command" | "too-large" | "refused" | "unreachable" | "failed" | "timeout";

/** Why a command got no answer; `kind` decides the guest's errno, `status` the API's. */
export class CommandError extends TauError {
  constructor(readonly kind: CommandFailure, message: string, opts: { hint?: string; status: number }) {
    super(message, opts);
  }
}

export interface CommandMessage {
  project: string;
  protocol: string;
  command: string;
  data: Uint8Array;
}

/** Commands to other nodes (remote.ts, on a cloud only). */
export interface RemoteCommands {
  /** Live peers that run functions, least loaded first, this node excluded. */
  substratePeers(): string[];
  /** One command to `peer`; its answer, or a TauError (status 502: the peer could not be reached). */
  call(peer: string, msg: CommandMessage, timeoutMs: number): Promise<Uint8Array>;
}

interface Answerer {
  record: DeploymentRecord;
  fn: FunctionDeployment & { trigger: { type: "p2p"; protocol: string; command: string; local: boolean } };
}

/** A function's protocol: its trigger's, or the protocol of the service resource it names (Taubyte's `service:`). */
export function protocolOf(record: DeploymentRecord, fn: FunctionDeployment): string | undefined {
  if (fn.trigger?.type !== "p2p") return undefined;
  const named = fn.trigger.protocol;
  if (named.startsWith("/")) return named;
  const services = record.services ?? [];
  const service = services.find((s) => s.name === named && s.app === fn.app) ??
    services.find((s) => s.name === named && !s.app);
  return service?.protocol ?? named;
}

/** Every protocol the project has: its service resources' and its p2p functions'. */
export function protocolsOf(record: DeploymentRecord): string[] {
  const all = new Set((record.services ?? []).map((s) => s.protocol));
  for (const fn of record.functions) {
    const p = protocolOf(record, fn);
    if (p) all.add(p);
  }
  return [...all].sort();
}

const fnName = (fn: FunctionDeployment) => (fn.app ? `${fn.app}/${fn.name}` : fn.name);

export class Commands {
  constructor(
    private readonly deps: {
      events: EventFunctions;
      /** This node's peer id ("local" on `tau dev`). */
      self: string;
      remote?: RemoteCommands;
      log?: (line: string) => void;
    },
  ) {}

  get self(): string {
    return this.deps.self;
  }

  /** The function that answers `command` on `protocol` for `project`; a CommandError naming what is missing. */
  async answerer(project: string, protocol: string, command: string): Promise<Answerer> {
    const nobody = `no function of project ${project} answers command ${command} on protocol ${protocol}`;
    const record = await this.deps.events.record(project);
    if (!record) {
      throw new CommandError("protocol", nobody, {
        status: 404,
        hint: `project ${project} has no deployment yet: push its config and code (tau deployments ${project})`,
      });
    }
    const protocols = protocolsOf(record);
    if (!protocols.includes(protocol)) {
      throw new CommandError("protocol", nobody, {
        status: 404,
        hint: protocols.length
          ? `its protocols are ${protocols.join(", ")}`
          : `it has none: add services/<name>.yaml with protocol: ${protocol} and a function with trigger ` +
            `{type: p2p, protocol: ${protocol}, command: ${command}}`,
      });
    }
    const onProtocol = record.functions.filter((f) => protocolOf(record, f) === protocol);
    // Taubyte refuses two picks; a name order makes the pick at least the same on every node.
    const fn = onProtocol.filter((f) => f.trigger?.type === "p2p" && f.trigger.command === command)
      .sort((a, b) => fnName(a).localeCompare(fnName(b)))[0];
    if (!fn) {
      const commands = onProtocol.map((f) => f.trigger?.type === "p2p" ? f.trigger.command : "").filter(Boolean);
      throw new CommandError("command", nobody, {
        status: 404,
        hint: commands.length
          ? `commands on ${protocol}: ${[...new Set(commands)].sort().join(", ")}`
          : `add a function with trigger {type: p2p, protocol: ${protocol}, command: ${command}}`,
      });
    }
    return { record, fn: fn as Answerer["fn"] };
  }

  /**
   * Sends a command and resolves with its answer. `to`: the peer that must answer (default: this node when it runs
   * functions, else the least loaded live one that does, then the next when one cannot be reached).
   */
  async send(
    project: string,
    protocol: string,
    command: string,
    data: Uint8Array,
    opts: { to?: string; from?: string } = {},
  ): Promise<Uint8Array> {
    if (data.length > MAX_COMMAND_BYTES) {
      throw new CommandError(
        "too-large",
        `command data of ${data.length} bytes is over the ${MAX_COMMAND_BYTES} a command may carry`,
        {
          status: 413,
          hint: "put large data in a storage and send its name",
        },
      );
    }
    const target = await this.answerer(project, protocol, command);
    const self = this.deps.self;
    const to = opts.to && opts.to !== self ? opts.to : undefined;
    if (!to && this.deps.events.runsFunctions) return await this.run(target, protocol, data, opts.from ?? self, false);
    const remote = this.deps.remote;
    if (!remote) {
      throw new CommandError("unreachable", `peer ${to} is not reachable: this node is not part of a cloud`, {
        status: 502,
        hint: 'tau dev is one node: send without a peer (or to "local")',
      });
    }
    const what = `command ${command} on protocol ${protocol} of project ${project}`;
    if (target.fn.trigger.local) {
      throw new CommandError(
        "refused",
        `function ${fnName(target.fn)} answers ${what} only when sent from its own node (trigger local: true)`,
        {
          status: 403,
          hint: to
            ? "send it without a peer, from a node that runs functions"
            : "this node runs no functions: send it from a node that does",
        },
      );
    }
    const live = remote.substratePeers();
    if (to && !live.includes(to)) {
      throw new CommandError(
        "unreachable",
        `peer ${to} is not reachable: it is not a live node of this cloud that runs functions`,
        {
          status: 502,
          hint: "tau nodes lists the nodes and their services",
        },
      );
    }
    const peers = to ? [to] : live;
    if (peers.length === 0) {
      throw new CommandError("unreachable", `no node that runs functions is up to answer ${what}`, {
        status: 503,
        hint: "tau nodes shows which nodes are up",
      });
    }
    const msg: CommandMessage = { project, protocol, command, data };
    const failures: string[] = [];
    for (const peer of peers) {
      try {
        return await remote.call(peer, msg, target.fn.timeoutMs + REMOTE_GRACE_MS);
      } catch (err) {
        // The peer answered (refused, trapped, timed out): that is the answer. Only an unreachable peer is skipped.
        if (err instanceof TauError && err.status !== 502) {
          throw new CommandError(kindOf(err.status), err.message, { status: err.status, hint: err.hint });
        }
        failures.push(`${peer}: ${err instanceof Error ? err.message : String(err)}`);
        this.deps.log?.(`commands: ${what} could not reach ${peer}: ${failures.at(-1)}`);
      }
    }
    if (to) {
      throw new CommandError("unreachable", `peer ${to} is not reachable: ${failures[0].slice(to.length + 2)}`, {
        status: 502,
        hint: "tau nodes shows which nodes are up; send without --to to let the cloud pick one",
      });
    }
    throw new CommandError("unreachable", `no node could be reached to answer ${what} (${failures.join("; ")})`, {
      status: 502,
      hint: "tau nodes shows which nodes are up",
    });
  }

  /** A command that arrived from `from` (another node when `remote`), answered by a function of this node. */
  async answerHere(msg: CommandMessage, from: string, remote: boolean): Promise<Uint8Array> {
    if (msg.data.length > MAX_COMMAND_BYTES) {
      throw new CommandError("too-large", `command data over ${MAX_COMMAND_BYTES} bytes`, { status: 413 });
    }
    const target = await this.answerer(msg.project, msg.protocol, msg.command);
    return await this.run(target, msg.protocol, msg.data, from, remote);
  }

  private async run(target: Answerer, protocol: string, data: Uint8Array, from: string, remote: boolean) {
    const { record, fn } = target;
    const what = `command ${fn.trigger.command} on protocol ${protocol} of project ${record.project}`;
    if (remote && fn.trigger.local) {
      throw new CommandError(
        "refused",
        `function ${
          fnName(fn)
        } answers ${what} only when sent from its own node (trigger local: true); this one came from peer ${from}`,
        {
          status: 403,
          hint: "send it from a function on that node, or set local: false on the trigger",
        },
      );
    }
    if (!this.deps.events.runsFunctions) {
      throw new CommandError("unreachable", "this node runs no functions", { status: 502 });
    }
    const result = await this.deps.events.invoke(record, fn, {
      kind: "p2p",
      protocol,
      command: fn.trigger.command,
      data,
      from,
      to: this.deps.self,
    });
    if (!result.ok) {
      const timeout = result.reason === "timeout";
      throw new CommandError(
        timeout ? "timeout" : "failed",
        `function ${fnName(fn)} failed answering ${what}: ${result.reason}: ${result.message}`,
        {
          status: timeout ? 504 : result.reason === "busy" ? 503 : 500,
          hint: `its log has the detail (request lines of ${fnName(fn)})`,
        },
      );
    }
    if (result.body.length > MAX_COMMAND_BYTES) {
      throw new CommandError(
        "too-large",
        `function ${
          fnName(fn)
        } answered ${what} with ${result.body.length} bytes, over the ${MAX_COMMAND_BYTES} an answer may carry`,
        {
          status: 500,
          hint: "put large answers in a storage and answer with its name",
        },
      );
    }
    return result.body;
  }

  /** What a function's host calls reach: commands of its own project only. */
  hostOps(project: string): P2pOps {
    return {
      send: async (protocol, command, data, to) => {
        try {
          return await this.send(project, protocol, command, data, to ? { to } : {});
        } catch (err) {
          if (!(err instanceof CommandError)) throw err;
          const hint = err.hint ? ` (${err.hint})` : "";
          throw new HostError(HOST_CODES[err.kind], `p2p: ${err.message}${hint}`);
        }
      },
      listen: async (protocol) => {
        const record = await this.deps.events.record(project);
        const protocols = record ? protocolsOf(record) : [];
        if (!protocols.includes(protocol)) {
          throw new HostError(
            "unbound",
            `p2p: project ${project} has no protocol ${protocol} (${
              protocols.length ? `its protocols are ${protocols.join(", ")}` : "it has none"
            })`,
          );
        }
        // Commands are addressed by project and protocol: two projects may use the same protocol id.
        return `/${project}${protocol}`;
      },
      discover: (max) => Promise.resolve((this.deps.remote?.substratePeers() ?? []).slice(0, max)),
    };
  }
}

const HOST_CODES: Record<CommandFailure, HostErrorCode> = {
  protocol: "unbound",
  command: "not-found",
  "too-large": "too-large",
  refused: "denied",
  unreachable: "failed",
  failed: "failed",
  timeout: "failed",
};

function kindOf(status: number): CommandFailure {
  if (status === 403) return "refused";
  if (status === 404) return "command";
  if (status === 413) return "too-large";
  if (status === 504) return "timeout";
  return "failed";
}

/**
 * HostServices.p2p for a project, for a binder made before the commands service exists (node.ts: the service needs
 * the event functions, which need the function targets, which need the binder). Resolved at each call.
 */
export function lateHostOps(get: () => Commands | undefined, project: string): P2pOps {
  const ops = () => {
    const commands = get();
    if (!commands) throw new HostError("failed", "p2p: this node's commands service is not started yet");
    return commands.hostOps(project);
  };
  return {
    send: (protocol, command, data, to) => ops().send(protocol, command, data, to),
    listen: (protocol) => ops().listen(protocol),
    discover: (max) => ops().discover(max),
  };
}

/** The commands service of a node; on a cloud it also answers and sends commands over libp2p. */
export async function startCommands(deps: {
  events: EventFunctions;
  cluster?: Cluster;
  log: (line: string) => void;
}): Promise<Commands> {
  const cluster = deps.cluster;
  if (!cluster) return new Commands({ events: deps.events, self: "local", log: deps.log });
  const remote = await import(new URL("./remote.ts", import.meta.url).href) as typeof import("./remote.ts");
  const self = cluster.p2p.peerId;
  const commands = new Commands({
    events: deps.events,
    self,
    remote: remote.remoteCommands(cluster.rpc, cluster.directory, self),
    log: deps.log,
  });
  if (deps.events.runsFunctions) await remote.serveCommands(cluster.p2p.libp2p, commands);
  return commands;
}
