/** Address checks for hosts.yaml: an `addr` entry is a CIDR (IPv4 or IPv6), an `ssh.addr` an IP or a host name. */

export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

export function isIPv6(s: string): boolean {
  if (!s.includes(":") || !/^[0-9a-fA-F:.]+$/.test(s)) return false;
  try {
    // The URL parser implements the whole IPv6 text grammar (::, embedded IPv4); a bracketed host must be one.
    new URL(`http://[${s}]/`);
    return true;
  } catch {
    return false;
  }
}

/** Why `s` is not a CIDR, or undefined when it is one. */
export function cidrProblem(s: string): string | undefined {
  const m = s.match(/^([^/]+)\/(\d{1,3})$/);
  if (!m) return `${JSON.stringify(s)} is not a CIDR (address/prefix, e.g. 10.0.0.5/24)`;
  const [, ip, bits] = m;
  const max = isIPv4(ip) ? 32 : isIPv6(ip) ? 128 : 0;
  if (!max) return `${JSON.stringify(s)} is not a CIDR: ${ip} is not an IP address`;
  if (Number(bits) > max) return `${JSON.stringify(s)} is not a CIDR: /${bits} is longer than ${max} bits`;
  return undefined;
}

const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/;

export const isHostAddress = (s: string) => isIPv4(s) || isIPv6(s) || HOSTNAME.test(s);

/** "ADDR", "ADDR:PORT" or "[IPv6]:PORT" (a bare IPv6 has no port). */
export function splitHostPort(s: string): { addr: string; port?: number } | undefined {
  let addr = s;
  let port: string | undefined;
  const bracket = s.match(/^\[([^\]]+)\](?::(\d+))?$/);
  if (bracket) [addr, port] = [bracket[1], bracket[2]];
  else if (!isIPv6(s) && s.includes(":")) {
    [addr, port] = [s.slice(0, s.lastIndexOf(":")), s.slice(s.lastIndexOf(":") + 1)];
  }
  if (!isHostAddress(addr)) return undefined;
  if (port === undefined) return { addr };
  const n = Number(port);
  return /^\d+$/.test(port) && n >= 1 && n <= 65535 ? { addr, port: n } : undefined;
}

export const isPort = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535;
