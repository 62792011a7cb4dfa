/**
 * Host calls across threads. A guest that uses host services runs on an executor Worker (never inline: see
 * engine.ts), but the stores it reaches (Deno KV, Helia, libp2p) live on the serving thread. The Worker's
 * HostServices is a proxy that posts each operation as a message; the pool answers it with the job's real
 * services (answerHostCall) and posts the result back. One table (HOST_OPS) names every operation, so neither side
 * calls anything a message merely names.
 */
import { HostError, type HostErrorCode, type HostServices } from "./services.ts";

/** Every operation of every capability, as the proxy exposes and the serving thread accepts them. */
export const HOST_OPS = {
  database: ["open", "get", "put", "delete", "list"],
  storage: ["open", "add", "get", "versions", "current", "delete", "files", "cid", "usage"],
  globals: ["get", "put"],
  content: ["add", "cat"],
  http: ["fetch"],
  secrets: ["get"],
  p2p: ["send", "listen", "discover"],
  pubsub: ["publish", "webSocketURL", "subscribe"],
} as const satisfies Record<keyof HostServices, readonly string[]>;

export interface HostCall {
  hostCall: { jobId: number; callId: number; capability: string; op: string; args: unknown[] };
}

export interface HostReply {
  hostReply: { callId: number; result?: unknown; error?: { code: HostErrorCode; message: string } };
}

/** The Worker side: HostServices whose every operation is a message to the serving thread. */
export class HostProxy {
  private nextCallId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  jobId = 0;

  constructor(private readonly post: (msg: HostCall) => void) {}

  services(): Required<HostServices> {
    const out: Record<string, Record<string, (...args: unknown[]) => Promise<unknown>>> = {};
    for (const [capability, ops] of Object.entries(HOST_OPS)) {
      const cap: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
      for (const op of ops) cap[op] = (...args) => this.call(capability, op, args);
      out[capability] = cap;
    }
    return out as unknown as Required<HostServices>;
  }

  private call(capability: string, op: string, args: unknown[]): Promise<unknown> {
    const callId = this.nextCallId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(callId, { resolve, reject });
      this.post({ hostCall: { jobId: this.jobId, callId, capability, op, args } });
    });
  }

  /** A reply from the serving thread; replies for calls nobody waits for any more (timed out) are dropped. */
  answer(reply: HostReply["hostReply"]): void {
    const w = this.waiting.get(reply.callId);
    if (!w) return;
    this.waiting.delete(reply.callId);
    if (reply.error) w.reject(new HostError(reply.error.code, reply.error.message));
    else w.resolve(reply.result);
  }

  /** The call ended (timeout, trap): what is still outstanding will never be awaited. */
  forget(): void {
    this.waiting.clear();
  }
}

/** The serving-thread side: runs one operation on the job's services; every failure becomes an error reply. */
export async function answerHostCall(
  services: HostServices | undefined,
  call: HostCall["hostCall"],
): Promise<HostReply> {
  const { callId, capability, op, args } = call;
  try {
    const ops = (HOST_OPS as Record<string, readonly string[]>)[capability];
    if (!ops?.includes(op)) throw new HostError("invalid", `no host operation ${capability}.${op}`);
    const impl = (services as Record<string, Record<string, (...a: unknown[]) => Promise<unknown>> | undefined>)?.[
      capability
    ];
    if (!impl) throw new HostError("unbound", `this function has no ${capability} capability on this node`);
    const result = await impl[op](...args);
    return { hostReply: { callId, result } };
  } catch (err) {
    const error = err instanceof HostError
      ? { code: err.code, message: err.message }
      : { code: "failed" as const, message: err instanceof Error ? err.message : String(err) };
    return { hostReply: { callId, error } };
  }
}
