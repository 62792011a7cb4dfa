/**
 * What the outbound tests (runtime/net/*_test.ts) share: HTTP servers on 127.0.0.x that record what they got, a fake
 * resolver (nothing in the tests sends a DNS query), a client with no allow-list and no DNS by default, and a check
 * for a one-line HostError of a given code.
 */
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { HostError, type HostErrorCode } from "../wasm/host/services.ts";
import { createOutbound, type OutboundOptions, type Resolver } from "./outbound.ts";

export interface Seen {
  method: string;
  url: string;
  host: string | null;
  authorization: string | null;
  body: string;
}

export interface TestServer {
  port: number;
  seen: Seen[];
  /** `http://<hostname>:<port><path>` */
  url(path?: string): string;
  close(): Promise<void>;
}

export type Handler = (req: Request, url: URL) => Response | Promise<Response>;

export const echo: Handler = (req, url) =>
  new Response(`${req.method} ${url.pathname}${url.search}`, {
    headers: { "X-Echo": "yes", "Content-Type": "text/plain" },
  });

export function serve(hostname: string, handler: Handler = echo, tls?: { cert: string; key: string }): TestServer {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname, port: 0, onListen() {}, ...tls }, async (req) => {
    seen.push({
      method: req.method,
      url: req.url,
      host: req.headers.get("host"),
      authorization: req.headers.get("authorization"),
      body: await req.text(),
    });
    return handler(req, new URL(req.url));
  });
  const port = server.addr.port;
  return {
    port,
    seen,
    url: (path = "/") => `http://${hostname}:${port}${path}`,
    close: () => server.shutdown(),
  };
}

/** A resolver that answers from a table and throws for anything else: tests never send a DNS query. */
export function fakeResolver(table: Record<string, string[]>, calls: string[] = []): Resolver {
  return (hostname) => {
    calls.push(hostname);
    const answer = table[hostname];
    return answer ? Promise.resolve(answer) : Promise.reject(new Error(`no such test host ${hostname}`));
  };
}

const noDns: Resolver = (hostname) => Promise.reject(new Error(`unexpected lookup of ${hostname}`));

export function client(opts: Partial<OutboundOptions> = {}) {
  return createOutbound({ allow: [], resolve: noDns, ...opts });
}

export function get(url: string, headers: [string, string][] = []) {
  return { method: "GET", url, headers, body: null };
}

export function hostError(code: HostErrorCode, message?: RegExp) {
  return (err: unknown) => {
    assert(err instanceof HostError, `a HostError, not ${err}`);
    assertEquals(err.code, code, `code of "${err.message}"`);
    assert(!err.message.includes("\n"), "one line");
    if (message) assertMatch(err.message, message);
  };
}

export const text = (b: Uint8Array) => new TextDecoder().decode(b);
