/**
 * Which channels a project has: a channel exists when one of the project's messaging resources matches it (`match`,
 * or a regular expression over names with `regex`). A function in an application sees that application's resources
 * first, then the project's (the same precedence as databases, services/data/bindings.ts), so an application can
 * keep a channel of its own. A channel is named by (project, scope, channel), scope being the matching resource's
 * application ("" for the project): the same channel name in two applications is two channels.
 */
import { createHash } from "node:crypto";
import { base58btc } from "multiformats/bases/base58";
import { regexProblem } from "../../runtime/schema/checks.ts";
import { HostError } from "../../runtime/wasm/host/services.ts";
import type { DeploymentRecord, MessagingBinding } from "../tns/records.ts";

/** Longest channel name accepted (Taubyte sets none; a topic name travels with every message). */
export const MAX_CHANNEL_BYTES = 256;

export interface ChannelRef {
  project: string;
  /** The application of the resource that matched, "" for a project-level one. */
  scope: string;
  channel: string;
  binding: MessagingBinding;
}

/**
 * The resource a channel resolves to for a caller in `app` (undefined: the project level), or a HostError naming
 * the channel and the fix. Compiled matchers are kept per record (records never change).
 */
export function resolveChannel(record: DeploymentRecord, app: string | undefined, channel: string): ChannelRef {
  const problem = channelProblem(channel);
  if (problem) throw new HostError("invalid", problem);
  const found = matchersOf(record).find((m) =>
    (m.binding.app === undefined || m.binding.app === app) && m.test(channel)
  );
  if (!found) {
    throw new HostError(
      "unbound",
      `no messaging resource of project ${record.project}${app ? ` (app ${app})` : ""} matches channel ${channel}: ` +
        `add messaging/<name>.yaml with match: ${channel}`,
    );
  }
  return { project: record.project, scope: found.binding.app ?? "", channel, binding: found.binding };
}

/** Whether `channel` can name a channel at all (not whether a resource matches it). */
export function channelProblem(channel: string): string | undefined {
  if (channel === "") return "a channel name must not be empty";
  if (new TextEncoder().encode(channel).length > MAX_CHANNEL_BYTES) {
    return `channel name ${channel.slice(0, 40)}... is longer than ${MAX_CHANNEL_BYTES} bytes`;
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(channel)) return `channel name ${JSON.stringify(channel)} has control characters`;
  return undefined;
}

interface Matcher {
  binding: MessagingBinding;
  test: (channel: string) => boolean;
}

const compiled = new WeakMap<DeploymentRecord, Matcher[]>();

/** The application's resources before the project's; within each, exact names before regexes, then config order. */
function matchersOf(record: DeploymentRecord): Matcher[] {
  let list = compiled.get(record);
  if (!list) {
    const all = record.messaging ?? [];
    const order = (tier: MessagingBinding[]) => [...tier.filter((b) => !b.regex), ...tier.filter((b) => b.regex)];
    list = [...order(all.filter((b) => b.app !== undefined)), ...order(all.filter((b) => b.app === undefined))]
      .map((binding) => ({ binding, test: matcher(binding) }));
    compiled.set(record, list);
  }
  return list;
}

/** A regex that could backtrack exponentially was refused by `tau validate`; one in an old record matches nothing. */
function matcher(b: MessagingBinding): (channel: string) => boolean {
  if (!b.regex) return (channel) => channel === b.match;
  if (regexProblem(b.match)) return () => false;
  try {
    const re = new RegExp(`^(?:${b.match})$`);
    return (channel) => re.test(channel);
  } catch {
    return () => false;
  }
}

/**
 * Taubyte's WebSocket path hash: the base58 multihash (sha2-256) of project + application, as its substrate names
 * `ws-<hash>/<channel>` (services/substrate/components/pubsub/common/types.go). Kept so their browser code, which
 * joins the URL it got onto the page's origin, works unchanged.
 */
export function scopeHash(project: string, scope: string): string {
  const digest = createHash("sha256").update(project + scope).digest();
  const multihash = new Uint8Array(2 + digest.length);
  multihash[0] = 0x12; // sha2-256
  multihash[1] = digest.length;
  multihash.set(digest, 2);
  return base58btc.baseEncode(multihash);
}

/** The path of a channel on the WebSocket port, `ws-<hash>/<channel>` (getWebSocketURL adds scheme, domain, port). */
export function webSocketPath(ref: ChannelRef): string {
  return `ws-${scopeHash(ref.project, ref.scope)}/${ref.channel}`;
}

/** A channel's key inside the node (and the tail of its gossipsub topic). */
export function channelKey(project: string, scope: string, channel: string): string {
  return scope ? `${project}:${scope}/${channel}` : `${project}/${channel}`;
}
