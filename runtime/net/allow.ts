/**
 * A function's outbound allow-list (see outbound.ts): parsing its entries (host, host:port, an IP address, a CIDR),
 * with a one-line error naming a malformed entry, and `checkAddress`, the whole policy as a pure function: may a
 * request for this host on this port go to this address? No I/O: the config schema validates entries with it, and
 * tests judge addresses without a socket.
 */

import {
  denialReason,
  displayIp,
  formatIp,
  inPrefix,
  type Ip,
  normalHost,
  parseIp,
  parseIPv4,
  parseIPv6,
  v6net,
} from "./addresses.ts";

/** One parsed allow-list entry. `port` null: any port. */
export type AllowEntry =
  | { kind: "host"; text: string; host: string; port: number | null }
  | { kind: "net"; text: string; family: 4 | 6; address: string; prefix: number; port: number | null };

function parsePort(s: string): number | null {
  if (!/^[0-9]{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : null;
}

/**
 * Parses one allow-list entry: `host:port` or `host` (a host name, an IPv4 address, an IPv6 address in brackets;
 * a bare IPv6 address has no port) or a CIDR (`10.0.0.0/8`, `fd00::/8`, no port). A malformed entry gives
 * `{error}`, one line naming the entry.
 */
export function parseAllowEntry(s: string): AllowEntry | { error: string } {
  const text = s;
  const bad = (why: string) => ({ error: `outbound allow-list entry ${JSON.stringify(text)}: ${why}` });
  s = s.trim();
  if (s === "") return bad("empty");
  if (s.includes("://")) return bad("write host, host:port or a CIDR, not a URL");
  if (s.includes("*")) return bad("wildcards are not supported; list each host, or use a CIDR");
  if (/[\s@?#\\]/.test(s)) return bad("not a host, host:port or CIDR");
  const slash = s.indexOf("/");
  if (slash >= 0) {
    let addr = s.slice(0, slash);
    const bits = s.slice(slash + 1);
    if (addr.startsWith("[") && addr.endsWith("]")) addr = addr.slice(1, -1);
    const ip = addr.includes(":") ? parseIPv6(addr) : parseIPv4(addr);
    if (!ip) return bad(`${addr} is not an IP address (a CIDR is address/bits; it cannot name a port)`);
    const max = ip.family === 4 ? 32 : 128;
    if (!/^[0-9]{1,3}$/.test(bits) || Number(bits) > max) {
      return bad(`the prefix length must be a number from 0 to ${max} (a CIDR cannot name a port)`);
    }
    const prefix = Number(bits);
    const net = new Uint8Array(ip.bytes.length);
    for (let i = 0; i < net.length; i++) {
      const keep = Math.max(0, Math.min(8, prefix - 8 * i));
      net[i] = ip.bytes[i] & ((0xff << (8 - keep)) & 0xff);
    }
    const base = formatIp({ family: ip.family, bytes: net });
    if (!net.every((b, i) => b === ip.bytes[i])) {
      return bad(`${addr} has bits set beyond the /${prefix} prefix; did you mean ${base}/${prefix}?`);
    }
    return { kind: "net", text, family: ip.family, address: base, prefix, port: null };
  }
  let host = s;
  let port: number | null = null;
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) return bad("missing ]");
    host = s.slice(1, close);
    const after = s.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":") || (port = parsePort(after.slice(1))) === null) {
        return bad("the port must be a number from 1 to 65535");
      }
    }
    const ip = parseIPv6(host);
    if (!ip) return bad(`${host} is not an IPv6 address`);
    return { kind: "net", text, family: 6, address: formatIp(ip), prefix: 128, port };
  }
  const colons = s.split(":").length - 1;
  if (colons > 1) {
    const ip = parseIPv6(s);
    if (!ip) return bad("not an IPv6 address (write [address]:port to name a port)");
    return { kind: "net", text, family: 6, address: formatIp(ip), prefix: 128, port: null };
  }
  if (colons === 1) {
    const at = s.lastIndexOf(":");
    host = s.slice(0, at);
    port = parsePort(s.slice(at + 1));
    if (port === null) return bad("the port must be a number from 1 to 65535");
  }
  if (host === "") return bad("no host");
  const ip4 = parseIPv4(host);
  if (ip4) return { kind: "net", text, family: 4, address: formatIp(ip4), prefix: 32, port };
  let hostname: string;
  try {
    hostname = new URL(`http://${host}/`).hostname;
  } catch {
    return bad(`${host} is not a valid host name`);
  }
  if (parseIPv4(hostname)) return bad(`${host} is an ambiguous form of ${hostname}; write ${hostname}`);
  if (hostname.startsWith("[")) return bad(`${host} is not a valid host name`);
  const name = normalHost(hostname);
  if (name === "" || name.split(".").some((label) => label === "")) return bad(`${host} has an empty label`);
  return { kind: "host", text, host: name, port };
}

/** Parses a whole allow-list; throws an Error naming the first malformed entry. */
export function parseAllowList(list: readonly string[]): AllowEntry[] {
  return list.map((s) => {
    const entry = parseAllowEntry(s);
    if ("error" in entry) throw new Error(entry.error);
    return entry;
  });
}

function entryMatches(entry: AllowEntry, ip: Ip, port: number, hostname: string): boolean {
  if (entry.port !== null && entry.port !== port) return false;
  if (entry.kind === "host") return entry.host === normalHost(hostname);
  const net = (entry.family === 4 ? parseIPv4(entry.address) : parseIPv6(entry.address))!.bytes;
  if (entry.family === ip.family) return inPrefix(ip.bytes, net, entry.prefix);
  // ::ffff:10.0.0.1 is the host 10.0.0.1: an IPv4 entry covers its mapped form.
  if (entry.family === 4 && ip.family === 6 && inPrefix(ip.bytes, v6net("::ffff:0:0"), 96)) {
    return inPrefix(ip.bytes.subarray(12), net, entry.prefix);
  }
  return false;
}

export type AddressCheck =
  | { allowed: true }
  /** `address`: the address as it is shown ("10.0.0.5", "[::1]"); `reason`: "a private address". */
  | { allowed: false; address: string; reason: string };

/**
 * The policy, pure: may a request for `hostname` (the URL's host as written, normalised by the URL parser) on `port`
 * go to `ip`? Public addresses are allowed; a denied one is allowed when an entry names the host or covers the
 * address, with the port when the entry has one. `allow` entries may be given unparsed (a malformed one throws).
 */
export function checkAddress(
  ip: string,
  port: number,
  hostname: string,
  allow: readonly (AllowEntry | string)[],
): AddressCheck {
  const parsed = parseIp(ip);
  if (!parsed) return { allowed: false, address: ip, reason: "not an IP address" };
  const reason = denialReason(parsed);
  if (reason === null) return { allowed: true };
  const entries = allow.map((e) => typeof e === "string" ? parseAllowList([e])[0] : e);
  if (entries.some((entry) => entryMatches(entry, parsed, port, hostname))) return { allowed: true };
  return { allowed: false, address: displayIp(parsed), reason };
}
