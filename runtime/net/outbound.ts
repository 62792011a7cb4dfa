/**
 * The outbound HTTP client of functions (the guest's "HTTP client" calls): `createOutbound` implements
 * `OutboundOps` for one function, with its allow-list.
 *
 * Policy: a function reaches the public internet and nothing else. Loopback, unspecified, private (RFC 1918, CGNAT,
 * unique local), link-local, multicast, reserved, documentation and benchmarking addresses are denied, and so are the
 * IPv6 forms that wrap such an IPv4 address (IPv4-mapped, -compatible, -translated, NAT64, 6to4, Teredo), unless an
 * entry of the function's allow-list names the host (as written in the URL) or the address, and the port when the
 * entry has one. The check runs on the URL's host when it is an IP literal (the WHATWG URL parser has already turned
 * "2130706433", "0x7f.1" and "127.1" into 127.0.0.1), on every address a host name resolves to (one denied address
 * denies the request), and again on every redirect hop: redirects are followed here, never by fetch.
 *
 * DNS rebinding: the request goes to the addresses that were checked, never to the name again. Each hop's fetch runs
 * on its own `Deno.HttpClient` whose proxy is a SOCKS5 tunnel served in-process on 127.0.0.1 for that hop only
 * (`socks5h`: fetch hands the tunnel the host name instead of resolving it). The tunnel ignores the name and dials
 * only the checked addresses, so a name that resolves elsewhere a moment later changes nothing. TLS stays end to end
 * between fetch and the origin (SNI and certificate checked against the URL's host name, HTTP/2 by ALPN): nothing
 * is rewritten, unlike connecting to the IP with a Host header, which would break HTTPS. The tunnel takes only its own
 * client: a random per-hop password (SOCKS5 user/password auth) and the hop's port. A consequence: HTTP_PROXY and
 * HTTPS_PROXY from the node's environment do not apply to function traffic. The addresses are tried in the
 * resolver's order, the first that accepts wins (no Happy Eyeballs).
 *
 * Credentials in the URL are allowed: fetch sends them as Basic auth (the guest's business, as with Go's net/http,
 * which Taubyte functions are written against). Error messages name hosts only, never the URL, so they do not leak.
 * On a redirect to another origin, Authorization, Cookie and Proxy-Authorization are dropped.
 *
 * The parts: addresses.ts (IP parsing, the denied ranges, `classifyAddress`), allow.ts (the allow-list and
 * `checkAddress`, the policy as a pure function), tunnel.ts (the per-hop SOCKS5 tunnel), and here the client itself:
 * resolution, the checks on every hop, redirects, body limits and deadlines. The policy's public API
 * (`classifyAddress`, `AllowEntry`, `parseAllowEntry`, `parseAllowList`, `AddressCheck`, `checkAddress`) is
 * re-exported here, so callers keep importing from this module.
 */

import { HostError, type OutboundOps, type OutboundRequest, type OutboundResponse } from "../wasm/host/services.ts";
import { formatIp, normalHost, parseIp } from "./addresses.ts";
import { type AddressCheck, checkAddress, parseAllowList } from "./allow.ts";
import { oneLine, Tunnel } from "./tunnel.ts";

export { classifyAddress } from "./addresses.ts";
export { type AddressCheck, type AllowEntry, checkAddress, parseAllowEntry, parseAllowList } from "./allow.ts";

// --- Resolution -------------------------------------------------------------------------------------------------

export type Resolver = (hostname: string, opts?: { signal?: AbortSignal }) => Promise<string[]>;

/** localhost and *.localhost are loopback without a lookup (RFC 6761), whatever the resolver. */
function isLocalhost(name: string): boolean {
  return name === "localhost" || name.endsWith(".localhost");
}

/** A and AAAA from Deno's resolver, merged (either may be missing). */
export const defaultResolve: Resolver = async (hostname, opts) => {
  if (isLocalhost(normalHost(hostname))) return ["127.0.0.1", "::1"];
  const [a, aaaa] = await Promise.allSettled([
    Deno.resolveDns(hostname, "A", { signal: opts?.signal }),
    Deno.resolveDns(hostname, "AAAA", { signal: opts?.signal }),
  ]);
  const out = [...(a.status === "fulfilled" ? a.value : []), ...(aaaa.status === "fulfilled" ? aaaa.value : [])];
  if (out.length === 0 && a.status === "rejected" && aaaa.status === "rejected") throw a.reason;
  return out;
};

// --- The client -------------------------------------------------------------------------------------------------

export interface OutboundOptions {
  /** The function's allow-list (see `parseAllowEntry`); parsed once, a malformed entry throws. */
  allow: readonly string[];
  /** Host name to addresses. Default: `defaultResolve` (Deno.resolveDns, A and AAAA). localhost never reaches it. */
  resolve?: Resolver;
  /** Default 16 MiB; a longer response body is HostError("too-large"). */
  maxResponseBytes?: number;
  /** Default 10; one more is HostError("failed"). */
  maxRedirects?: number;
  /** A deadline for each request, redirects and body included (HostError("timeout")). None by default. */
  timeoutMs?: number;
  /** Extra trusted root certificates (PEM), besides the system's: a private CA, tests. */
  caCerts?: string[];
  /** Tests only: stands in for `fetch` (it gets the hop's `client` in its init). */
  fetchImpl?: typeof fetch;
}

export interface OutboundCallOptions {
  /** Aborting it ends the request with HostError("timeout"). */
  signal?: AbortSignal;
  /** This request's deadline, instead of the client's `timeoutMs`. */
  timeoutMs?: number;
}

export interface OutboundClient extends OutboundOps {
  fetch(req: OutboundRequest, opts?: OutboundCallOptions): Promise<OutboundResponse>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Framing and connection headers are the client's business, not the guest's. */
const DROPPED_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "upgrade",
]);
/** Not sent to another origin after a redirect (as fetch does for Authorization, and curl for Cookie). */
const CREDENTIAL_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);
const BODY_HEADERS = new Set(["content-type", "content-encoding", "content-language", "content-location"]);
/** The codings Deno's fetch decodes by itself: the guest gets the decoded body, so their headers no longer apply. */
const DECODED_CODINGS = new Set(["gzip", "br"]);

function hostOf(url: URL): string {
  return url.host; // host[:port], as written (normalised), IPv6 in brackets
}

function effectivePort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
}

function denied(url: URL, check: Extract<AddressCheck, { allowed: false }>, viaName: boolean, from?: URL): HostError {
  const name = normalHost(url.hostname);
  const where = from ? ` (redirected from ${hostOf(from)})` : "";
  const what = viaName
    ? `${name}${where} resolves to ${check.address}, ${check.reason}`
    : `${check.address}${where} is ${check.reason}`;
  const entry = `${viaName ? name : check.address}:${effectivePort(url)}`;
  return new HostError("denied", `denied: ${what}; add "${entry}" to the function's outbound allow-list to reach it`);
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The outbound HTTP client of one function. Throws an Error when an allow-list entry is malformed. */
export function createOutbound(opts: OutboundOptions): OutboundClient {
  const allow = parseAllowList(opts.allow);
  const resolve = opts.resolve ?? defaultResolve;
  const maxBytes = opts.maxResponseBytes ?? 16 * 1024 * 1024;
  const maxRedirects = opts.maxRedirects ?? 10;
  const doFetch: typeof fetch = opts.fetchImpl ?? ((input, init) => fetch(input, init));

  /** The addresses a hop may connect to, all checked; HostError("denied") or ("failed") otherwise. */
  async function target(url: URL, signal: AbortSignal, from?: URL): Promise<string[]> {
    const port = effectivePort(url);
    const literal = parseIp(url.hostname);
    if (literal) {
      const check = checkAddress(url.hostname, port, url.hostname, allow);
      if (!check.allowed) throw denied(url, check, false, from);
      return [formatIp(literal)];
    }
    const name = normalHost(url.hostname);
    let addresses: string[];
    if (isLocalhost(name)) addresses = ["127.0.0.1", "::1"];
    else {
      try {
        addresses = await raceAbort(resolve(url.hostname, { signal }), signal);
      } catch (err) {
        if (signal.aborted) throw err;
        throw new HostError("failed", `failed: could not resolve ${name}: ${oneLine(String(err))}`);
      }
    }
    if (addresses.length === 0) throw new HostError("failed", `failed: could not resolve ${name}`);
    for (const address of addresses) {
      const check = checkAddress(address, port, url.hostname, allow);
      if (!check.allowed) throw denied(url, check, true, from);
    }
    return addresses.map((a) => formatIp(parseIp(a)!));
  }

  async function readBody(res: Response, host: string, head: boolean): Promise<Uint8Array> {
    if (!res.body) return new Uint8Array(0);
    const tooLarge = () =>
      new HostError("too-large", `too-large: the response from ${host} is larger than ${maxBytes} bytes`);
    const coding = res.headers.get("content-encoding");
    const declared = Number(res.headers.get("content-length"));
    // A HEAD answer's length is the one a GET would have: it has no body to refuse.
    if (!head && !coding && Number.isFinite(declared) && declared > maxBytes) {
      await res.body.cancel().catch(() => {});
      throw tooLarge();
    }
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  /** `progress.host`: the host of the hop under way, for a timeout's message. */
  async function run(req: OutboundRequest, signal: AbortSignal, progress: { host: string }): Promise<OutboundResponse> {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      throw new HostError("invalid", `invalid: ${JSON.stringify(String(req.url).slice(0, 200))} is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new HostError("invalid", `invalid: ${url.protocol} URLs are not supported; use http: or https:`);
    }
    let method = String(req.method);
    if (!TOKEN.test(method)) throw new HostError("invalid", `invalid: ${JSON.stringify(method)} is not an HTTP method`);
    if (/^(connect|trace|track)$/i.test(method)) {
      throw new HostError("invalid", `invalid: the ${method.toUpperCase()} method is not allowed`);
    }
    let body: Uint8Array | null = req.body && req.body.length > 0 ? req.body : null;
    if (body && /^(get|head)$/i.test(method)) {
      throw new HostError("invalid", `invalid: a ${method.toUpperCase()} request cannot have a body`);
    }
    let headers: [string, string][] = [];
    for (const [name, value] of req.headers) {
      try {
        new Headers([[name, value]]);
      } catch {
        throw new HostError("invalid", `invalid: header ${JSON.stringify(String(name).slice(0, 100))} is malformed`);
      }
      if (!DROPPED_HEADERS.has(name.toLowerCase())) headers.push([name, value]);
    }

    let from: URL | undefined;
    for (let redirects = 0;; redirects++) {
      progress.host = hostOf(url);
      const addresses = await target(url, signal, from);
      const literal = parseIp(url.hostname);
      const tunnel = new Tunnel(
        addresses,
        effectivePort(url),
        literal ? { ip: literal } : { name: url.hostname },
        opts.caCerts,
      );
      try {
        let res: Response;
        try {
          res = await doFetch(url.href, {
            method,
            headers,
            body: body as Uint8Array<ArrayBuffer> | null,
            redirect: "manual",
            signal,
            client: tunnel.client,
          });
        } catch (err) {
          if (signal.aborted) throw err;
          // fetch's message repeats the URL (credentials included): only the reason is kept.
          const cause = (err as Error)?.cause;
          const why = tunnel.connectError ??
            oneLine(cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err))
              .replace(/error sending request for url \(.*?\): /, "");
          throw new HostError("failed", `failed: request to ${hostOf(url)} failed: ${why}`);
        }
        const location = res.headers.get("location");
        if ([301, 302, 303, 307, 308].includes(res.status) && location !== null) {
          await res.body?.cancel().catch(() => {});
          if (redirects >= maxRedirects) {
            throw new HostError("failed", `failed: too many redirects (more than ${maxRedirects}) from ${hostOf(url)}`);
          }
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            throw new HostError("failed", `failed: ${hostOf(url)} redirected to an invalid URL`);
          }
          if (next.protocol !== "http:" && next.protocol !== "https:") {
            throw new HostError("failed", `failed: ${hostOf(url)} redirected to an unsupported ${next.protocol} URL`);
          }
          const toGet = (res.status === 303 && !/^(get|head)$/i.test(method)) ||
            ((res.status === 301 || res.status === 302) && /^post$/i.test(method));
          if (toGet) {
            method = "GET";
            body = null;
            headers = headers.filter(([n]) => !BODY_HEADERS.has(n.toLowerCase()));
          }
          if (next.origin !== url.origin) headers = headers.filter(([n]) => !CREDENTIAL_HEADERS.has(n.toLowerCase()));
          from = url;
          url = next;
          continue;
        }
        let data: Uint8Array;
        try {
          data = await readBody(res, hostOf(url), /^head$/i.test(method));
        } catch (err) {
          if (err instanceof HostError || signal.aborted) throw err;
          throw new HostError(
            "failed",
            `failed: reading the response from ${hostOf(url)} failed: ${oneLine(String(err))}`,
          );
        }
        const coding = res.headers.get("content-encoding")?.trim().toLowerCase();
        const decoded = coding !== undefined && DECODED_CODINGS.has(coding);
        const pairs: [string, string][] = [];
        for (const [name, value] of res.headers) {
          if (decoded && (name === "content-encoding" || name === "content-length")) continue;
          pairs.push([name, value]);
        }
        return { status: res.status, headers: pairs, body: data, url: url.href };
      } finally {
        await tunnel.close();
      }
    }
  }

  return {
    async fetch(req: OutboundRequest, call: OutboundCallOptions = {}): Promise<OutboundResponse> {
      const ctl = new AbortController();
      const timeoutMs = call.timeoutMs ?? opts.timeoutMs;
      let timedOut = false;
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        timedOut = true;
        ctl.abort(new DOMException("the request timed out", "TimeoutError"));
      }, timeoutMs);
      const onAbort = () => ctl.abort(call.signal?.reason);
      if (call.signal?.aborted) onAbort();
      call.signal?.addEventListener("abort", onAbort, { once: true });
      const progress = { host: "the host" };
      try {
        return await run(req, ctl.signal, progress);
      } catch (err) {
        if (err instanceof HostError) throw err;
        if (ctl.signal.aborted) {
          const host = progress.host;
          throw new HostError(
            "timeout",
            timedOut
              ? `timeout: the request to ${host} took longer than ${timeoutMs} ms`
              : `timeout: the request to ${host} was aborted`,
          );
        }
        throw new HostError("failed", `failed: ${oneLine(String(err))}`);
      } finally {
        clearTimeout(timer);
        call.signal?.removeEventListener("abort", onAbort);
      }
    },
  };
}
