/**
 * WAGI: a WASI command module gets the request CGI-style (environment + stdin) and answers with a CGI header
 * block, a blank line and the body on stdout.
 */
import { MAX_RESPONSE_HEADER_BYTES, MAX_RESPONSE_HEADERS } from "./guest_output.ts";
import type { CallInput } from "./outcome.ts";

/** CGI environment for one request. Headers become HTTP_<NAME>; route params X_PARAM_<NAME>. */
export function cgiEnv(input: CallInput, fnName: string): Record<string, string> {
  const host = input.headers.get("host") ?? "";
  const colon = host.lastIndexOf(":");
  const hasPort = colon > 0 && !host.endsWith("]");
  const env: Record<string, string> = {
    GATEWAY_INTERFACE: "CGI/1.1",
    SERVER_SOFTWARE: "tau",
    SERVER_PROTOCOL: "HTTP/1.1",
    SERVER_NAME: hasPort ? host.slice(0, colon) : host,
    SERVER_PORT: hasPort ? host.slice(colon + 1) : "",
    REQUEST_METHOD: input.method,
    PATH_INFO: input.path,
    SCRIPT_NAME: "",
    QUERY_STRING: input.query,
    REQUEST_URI: input.query ? `${input.path}?${input.query}` : input.path,
    CONTENT_TYPE: input.headers.get("content-type") ?? "",
    CONTENT_LENGTH: String(input.body?.length ?? 0),
    X_FUNCTION_NAME: fnName,
    X_REQUEST_ID: input.requestId,
  };
  for (const [k, v] of input.headers) {
    if (k === "content-type" || k === "content-length") continue;
    env[`HTTP_${k.toUpperCase().replaceAll("-", "_")}`] = v;
  }
  for (const [k, v] of Object.entries(input.params)) {
    env[`X_PARAM_${k.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`] = v;
  }
  // Secrets last: a listed secret is the value of its name even where a header would make the same variable.
  if (input.env) { for (const k in input.env) env[k] = input.env[k]; }
  return env;
}

/**
 * The same environment as cgiEnv, as the `NAME=value` strings the guest gets, built without the record (this runs on
 * every WAGI call). Two header names can make one variable ("x-a", "x_a"), as can two route params ("id", "ID"): the
 * record keeps the last value at the first one's place, so those rare requests take the record's way.
 */
export function cgiEnviron(input: CallInput, fnName: string): string[] {
  const params = Object.keys(input.params);
  let host = "";
  let contentType = "";
  const headers: string[] = [];
  let clash = params.length > 1;
  // forEach, not for...of: Deno's header iterator measured ~5x slower (an iterator and a result object per entry).
  input.headers.forEach((v, k) => {
    if (k === "host") host = v;
    else if (k === "content-type") contentType = v;
    if (k === "content-type" || k === "content-length") return;
    if (k.includes("_")) clash = true;
    headers.push(`HTTP_${k.toUpperCase().replaceAll("-", "_")}=${v}`);
  });
  if (clash || input.env) return recordItems(cgiEnv(input, fnName));
  const colon = host.lastIndexOf(":");
  const hasPort = colon > 0 && !host.endsWith("]");
  const items = [
    "GATEWAY_INTERFACE=CGI/1.1",
    "SERVER_SOFTWARE=tau",
    "SERVER_PROTOCOL=HTTP/1.1",
    `SERVER_NAME=${hasPort ? host.slice(0, colon) : host}`,
    `SERVER_PORT=${hasPort ? host.slice(colon + 1) : ""}`,
    `REQUEST_METHOD=${input.method}`,
    `PATH_INFO=${input.path}`,
    "SCRIPT_NAME=",
    `QUERY_STRING=${input.query}`,
    `REQUEST_URI=${input.query ? `${input.path}?${input.query}` : input.path}`,
    `CONTENT_TYPE=${contentType}`,
    `CONTENT_LENGTH=${input.body?.length ?? 0}`,
    `X_FUNCTION_NAME=${fnName}`,
    `X_REQUEST_ID=${input.requestId}`,
  ];
  for (const h of headers) items.push(h);
  for (const k of params) items.push(`X_PARAM_${k.toUpperCase().replace(/[^A-Z0-9]/g, "_")}=${input.params[k]}`);
  return items;
}

function recordItems(env: Record<string, string>): string[] {
  const items: string[] = [];
  for (const k in env) items.push(`${k}=${env[k]}`);
  return items;
}

/** A response buffer this size is kept from call to call; a bigger one (a big response) is let go after its call. */
const STDOUT_KEEP_BYTES = 64 * 1024;

/**
 * WAGI stdout, collected in one buffer reused from call to call (calls on one thread never overlap, and a call's
 * response body is copied out of it before the call returns).
 */
export class CgiStdout {
  private buf = new Uint8Array(4096);
  size = 0;

  write(bytes: Uint8Array): void {
    const need = this.size + bytes.length;
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.max(need, 2 * this.buf.length));
      next.set(this.buf.subarray(0, this.size));
      this.buf = next;
    }
    this.buf.set(bytes, this.size);
    this.size = need;
  }

  /** What was written: a view, valid until the next reset. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.size);
  }

  reset(): void {
    this.size = 0;
    if (this.buf.length > STDOUT_KEEP_BYTES) this.buf = new Uint8Array(4096);
  }
}

export type CgiParse =
  | { ok: true; status: number; headers: [string, string][]; body: Uint8Array }
  | { ok: false; error: string };

const NL = 0x0a;
const CR = 0x0d;
const decoder = new TextDecoder();

/** Finds the end of the header block (the first empty line) within `limit` bytes. Returns [headerEnd, bodyStart]. */
function headerBlockEnd(out: Uint8Array, limit: number): [number, number] | undefined {
  let lineStart = 0;
  for (let i = 0; i < Math.min(out.length, limit); i++) {
    if (out[i] !== NL) continue;
    const lineEnd = i > lineStart && out[i - 1] === CR ? i - 1 : i;
    if (lineEnd === lineStart) return [lineStart, i + 1];
    lineStart = i + 1;
  }
  return undefined;
}

/** Parses a CGI response. Missing Status => 200 (302 when only Location is given). */
export function parseCgiOutput(out: Uint8Array): CgiParse {
  if (out.length === 0) {
    return { ok: false, error: "wrote nothing to stdout (expected CGI headers, a blank line, a body)" };
  }
  const end = headerBlockEnd(out, MAX_RESPONSE_HEADER_BYTES + 2);
  if (!end) {
    return {
      ok: false,
      error: out.length > MAX_RESPONSE_HEADER_BYTES
        ? `CGI header block is over ${MAX_RESPONSE_HEADER_BYTES / 1024} KiB (no blank line within it)`
        : "stdout has no blank line ending the CGI header block",
    };
  }
  const text = decoder.decode(out.subarray(0, end[0]));
  const headers: [string, string][] = [];
  let status: number | undefined;
  // The non-empty lines, each without its CR (one pass: this runs on every WAGI call).
  const lines: string[] = [];
  for (let at = 0; at < text.length;) {
    let nl = text.indexOf("\n", at);
    if (nl < 0) nl = text.length;
    const cut = nl > at && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
    if (cut > at) lines.push(text.slice(at, cut));
    at = nl + 1;
  }
  if (lines.length > MAX_RESPONSE_HEADERS + 1) {
    return { ok: false, error: `CGI output sets more than ${MAX_RESPONSE_HEADERS} headers` };
  }
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon).trim() : "";
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      return {
        ok: false,
        error: `CGI header line ${n + 1} is not "Name: value": ${JSON.stringify(line.slice(0, 80))}`,
      };
    }
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === "status") {
      const code = Number.parseInt(value, 10);
      if (!(code >= 200 && code <= 599)) return { ok: false, error: `invalid CGI Status ${JSON.stringify(value)}` };
      status = code;
    } else headers.push([name, value]);
  }
  if (status === undefined) status = headers.some(([k]) => k.toLowerCase() === "location") ? 302 : 200;
  return { ok: true, status, headers, body: out.subarray(end[1]) };
}
