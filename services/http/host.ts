/**
 * The host a request is for, as the gateway and the control plane look it up: from the Host header (HTTP/1.1) or
 * the URL's authority (HTTP/2 sends :authority, which Deno puts in the URL), without the port, lowercased, with one
 * trailing dot removed (`a.test.` is the same name as `a.test`). Anything that cannot be a host name is refused here,
 * before it reaches a cache or a KV key (a 2 KB Host used to end as a 500 from KV's key-size check).
 */

/** A DNS name is at most 253 characters; a bracketed IPv6 literal is shorter still. */
const MAX_HOST = 253;
const NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

import { requestHeader } from "./request_header.ts";

export type HostResult = { host: string } | { error: string };

export function requestHost(req: Request): HostResult {
  let raw = requestHeader(req, "host");
  if (raw === null) {
    const url = req.url;
    const start = url.indexOf("//") + 2;
    const end = url.indexOf("/", start);
    raw = url.slice(start, end < 0 ? undefined : end);
  }
  return parseHost(raw);
}

/** Parsed Host values: a node sees few distinct ones, and the checks below cost more than a lookup. */
const parsed = new Map<string, { host: string }>();
const PARSED_MAX = 4096;

export function parseHost(raw: string): HostResult {
  const known = parsed.get(raw);
  if (known) return known;
  const result = checkHost(raw);
  if ("host" in result) {
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(raw, result);
  }
  return result;
}

function checkHost(raw: string): HostResult {
  if (raw.length > MAX_HOST + 7) return { error: `Host header is ${raw.length} characters, longer than any host name` };
  let host = raw.toLowerCase();
  const colon = host.lastIndexOf(":");
  if (colon >= 0 && host.indexOf("]", colon) < 0) {
    const port = host.slice(colon + 1);
    if (!/^\d{1,5}$/.test(port)) return { error: `Host header ${shown(raw)} has a bad port` };
    host = host.slice(0, colon);
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host === "" || host.length > MAX_HOST || !(NAME.test(host) || IPV6.test(host))) {
    return { error: `Host header ${shown(raw)} is not a host name` };
  }
  return { host };
}

function shown(raw: string): string {
  return JSON.stringify(raw.length > 64 ? `${raw.slice(0, 64)}...` : raw);
}
