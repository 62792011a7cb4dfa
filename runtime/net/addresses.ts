/**
 * IP addresses and host names as the outbound policy sees them (see outbound.ts): strict parsing of the IPv4 and IPv6
 * text forms, their canonical display, prefix (CIDR) matching, and the ranges that are not the public internet,
 * including the IPv6 forms that wrap an IPv4 address. Pure and synchronous, so the policy can be judged without a
 * socket; allow.ts and the client build on it.
 */

export interface Ip {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/** Strict dotted quad: four decimal parts 0-255, no leading zeros (an ambiguous "010" is not accepted). */
export function parseIPv4(s: string): Ip | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    bytes[i] = n;
  }
  return { family: 4, bytes };
}

/** RFC 4291 text forms ("::", a dotted IPv4 tail), without brackets or zone. */
export function parseIPv6(s: string): Ip | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = parseIPv4(item);
        if (!v4) return null;
        out.push((v4.bytes[0] << 8) | v4.bytes[1], (v4.bytes[2] << 8) | v4.bytes[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return null;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  // A dotted tail may only end the address.
  if (halves.length === 2 && halves[0].includes(".")) return null;
  let all: number[];
  if (halves.length === 2) {
    if (head.length + tail.length > 7) return null;
    all = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    if (head.length !== 8) return null;
    all = head;
  }
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return { family: 6, bytes };
}

/** An IPv4 or IPv6 address; IPv6 may be in brackets. */
export function parseIp(s: string): Ip | null {
  if (s.startsWith("[") && s.endsWith("]")) return parseIPv6(s.slice(1, -1));
  return s.includes(":") ? parseIPv6(s) : parseIPv4(s);
}

export function formatIp(ip: Ip): string {
  if (ip.family === 4) return ip.bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i] << 8) | ip.bytes[i + 1]).toString(16));
  // The WHATWG serialisation (RFC 5952 compression, lowercase, no dotted tail), brackets dropped.
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

/** `host` in an error message or an allow-list suggestion: IPv6 in brackets. */
export function displayIp(ip: Ip): string {
  return ip.family === 6 ? `[${formatIp(ip)}]` : formatIp(ip);
}

export function inPrefix(bytes: Uint8Array, net: Uint8Array, prefix: number): boolean {
  const full = prefix >> 3;
  for (let i = 0; i < full; i++) if (bytes[i] !== net[i]) return false;
  const rest = prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[full] & mask) === (net[full] & mask);
}

const v4 = (a: number, b: number, c: number, d: number) => new Uint8Array([a, b, c, d]);

/** IPv4 ranges that are not the public internet, first match wins. */
const DENIED_V4: [Uint8Array, number, string][] = [
  [v4(0, 0, 0, 0), 8, "an unspecified address"],
  [v4(127, 0, 0, 0), 8, "a loopback address"],
  [v4(10, 0, 0, 0), 8, "a private address"],
  [v4(172, 16, 0, 0), 12, "a private address"],
  [v4(192, 168, 0, 0), 16, "a private address"],
  [v4(100, 64, 0, 0), 10, "a private (CGNAT) address"],
  [v4(169, 254, 0, 0), 16, "a link-local address"],
  [v4(192, 0, 2, 0), 24, "a documentation address"],
  [v4(198, 51, 100, 0), 24, "a documentation address"],
  [v4(203, 0, 113, 0), 24, "a documentation address"],
  [v4(198, 18, 0, 0), 15, "a benchmarking address"],
  [v4(224, 0, 0, 0), 4, "a multicast address"],
  [v4(255, 255, 255, 255), 32, "the broadcast address"],
  [v4(240, 0, 0, 0), 4, "a reserved address"],
];

export function v6net(text: string): Uint8Array {
  return parseIPv6(text)!.bytes;
}

/** IPv6 ranges denied outright (the wrapping forms are handled in `denialReason`). */
const DENIED_V6: [Uint8Array, number, string][] = [
  [v6net("::"), 128, "an unspecified address"],
  [v6net("::1"), 128, "a loopback address"],
  [v6net("fc00::"), 7, "a private (unique local) address"],
  [v6net("fec0::"), 10, "a site-local address"],
  [v6net("fe80::"), 10, "a link-local address"],
  [v6net("ff00::"), 8, "a multicast address"],
  [v6net("2001:db8::"), 32, "a documentation address"],
  [v6net("3fff::"), 20, "a documentation address"],
  [v6net("2001:2::"), 48, "a benchmarking address"],
  // RFC 8215: a site's own NAT64 prefix; where the IPv4 address sits in it is the operator's choice.
  [v6net("64:ff9b:1::"), 48, "a local-use NAT64 address"],
];

/** IPv6 forms that carry an IPv4 address: [prefix, prefix length, offset of the IPv4 bytes, name, xor]. */
const WRAPPING_V6: [Uint8Array, number, number, string, boolean][] = [
  [v6net("::ffff:0:0"), 96, 12, "an IPv4-mapped form", false],
  [v6net("::ffff:0:0:0"), 96, 12, "an IPv4-translated form", false],
  [v6net("::"), 96, 12, "an IPv4-compatible form", false],
  [v6net("64:ff9b::"), 96, 12, "a NAT64 form", false],
  [v6net("2002::"), 16, 2, "a 6to4 form", false],
  // Teredo: the client's address, inverted, in the last 32 bits.
  [v6net("2001::"), 32, 12, "a Teredo form", true],
];

function embeddedV4(ip: Ip): { v4: Ip; form: string } | null {
  if (ip.family !== 6) return null;
  for (const [net, prefix, offset, form, xor] of WRAPPING_V6) {
    if (!inPrefix(ip.bytes, net, prefix)) continue;
    const bytes = ip.bytes.slice(offset, offset + 4);
    if (xor) { for (let i = 0; i < 4; i++) bytes[i] ^= 0xff; }
    return { v4: { family: 4, bytes }, form };
  }
  return null;
}

/** Why the policy denies `ip` ("a private address"), or null for a public address. */
export function denialReason(ip: Ip): string | null {
  const table = ip.family === 4 ? DENIED_V4 : DENIED_V6;
  for (const [net, prefix, reason] of table) if (inPrefix(ip.bytes, net, prefix)) return reason;
  const wrapped = embeddedV4(ip);
  if (wrapped) {
    const inner = denialReason(wrapped.v4);
    if (inner) return `${wrapped.form} of ${formatIp(wrapped.v4)}, ${inner}`;
  }
  return null;
}

/**
 * Why the default policy denies `ip` ("a loopback address", "an IPv4-mapped form of 10.0.0.1, a private address"),
 * or null when it is a public address. Not an IP address: "not an IP address".
 */
export function classifyAddress(ip: string): string | null {
  const parsed = parseIp(ip);
  return parsed ? denialReason(parsed) : "not an IP address";
}

/** A host name for matching: the URL parser's form (lowercase, punycode), without one trailing dot. */
export function normalHost(hostname: string): string {
  const lower = hostname.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}
