/**
 * What a client can send to a node's HTTP edge, through raw HTTP against a real `tau dev` child (issue 8): bodies
 * over their cap (413, unread), the control plane behind a reverse proxy (refused; a listing never shows a webhook
 * secret), and malformed hosts, paths and ranges (a clear 4xx each). What was deployed keeps answering throughout.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "./helpers/assert.ts";
import { join } from "node:path";
import { commitAndPush, hostRequest, sh, startCloud, tau, waitForBuild } from "./helpers/cloud.ts";

const WAGI_ECHO = new URL("./fixtures/wagi/hello.wasm", import.meta.url).pathname;
const HOST = "edge.localtau";
const enc = new TextEncoder();

/**
 * Sends `head` and `chunks` (each written separately; a number waits that many ms first, for ordering, not timing)
 * on a fresh connection; the whole answer once it closes.
 */
async function raw(port: number, head: string, chunks: (string | number)[] = []): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const out: Uint8Array[] = [];
  const reading = (async () => {
    const buf = new Uint8Array(65536);
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        out.push(buf.slice(0, n));
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.ConnectionReset)) throw err;
    }
  })();
  try {
    await writeAll(conn, enc.encode(head));
    for (const c of chunks) {
      if (typeof c === "number") await new Promise((r) => setTimeout(r, c));
      else await writeAll(conn, enc.encode(c));
    }
  } catch (err) {
    // The node may close while we still send (it refused the body): what it answered is what counts.
    if (!(err instanceof Deno.errors.BrokenPipe || err instanceof Deno.errors.ConnectionReset)) throw err;
  }
  await reading;
  conn.close();
  return new TextDecoder().decode(Uint8Array.from(out.flatMap((b) => [...b])));
}

/** conn.write may write part of what it is given. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array) {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

function chunked(body: string, size: number): string[] {
  const parts: string[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.slice(i, i + size);
    parts.push(`${part.length.toString(16)}\r\n${part}\r\n`);
  }
  parts.push("0\r\n\r\n");
  return parts;
}

Deno.test("the HTTP edge: body caps, the control plane behind a proxy, malformed hosts, paths and ranges", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "tau-edge-req-" });
  const cloud = await startCloud(join(work, "data"));
  const get = (path: string, opts: Parameters<typeof hostRequest>[3] = {}) => hostRequest(cloud.port, HOST, path, opts);
  try {
    const r = await tau(["new", "project", "edge", "--cloud", cloud.url], { cwd: work });
    assertEquals(r.code, 0, r.stderr);
    const project = join(work, "edge");
    const code = join(project, "code");
    for (
      const args of [
        ["new", "domain", "edge", "--fqdn", HOST],
        [
          "new",
          "function",
          "users",
          "--domains",
          "edge",
          "--paths",
          "/users/:id",
          "--method",
          "ANY",
          "--template",
          "wasm",
        ],
        [
          "new",
          "function",
          "upload",
          "--domains",
          "edge",
          "--paths",
          "/upload",
          "--method",
          "POST",
          "--template",
          "wasm",
        ],
        ["new", "website", "site", "--domains", "edge", "--paths", "/"],
      ]
    ) {
      const made = await tau(args, { cwd: project });
      assertEquals(made.code, 0, made.stderr);
    }
    // users takes bodies of at most 1KB (execution.body); upload keeps the 10MB default.
    const usersYaml = join(project, "config/functions/users.yaml");
    const yaml = await Deno.readTextFile(usersYaml);
    assertStringIncludes(yaml, "  memory: 16MB\n");
    await Deno.writeTextFile(usersYaml, yaml.replace("  memory: 16MB\n", "  memory: 16MB\n  body: 1KB\n"));
    await Deno.copyFile(WAGI_ECHO, join(code, "functions/users/users.wasm"));
    await Deno.copyFile(WAGI_ECHO, join(code, "functions/upload/upload.wasm"));
    await Deno.writeTextFile(join(code, "websites/site/digits.txt"), "0123456789");
    await waitForBuild(cloud.url, "edge", await commitAndPush(code, "code"));
    const job = await waitForBuild(cloud.url, "edge", await commitAndPush(join(project, "config"), "config"));
    assertEquals(job.status, "success", job.error);
    assertStringIncludes((await get("/users/7")).text, "id=7");

    await t.step(
      "#5 a body over its function's cap gets 413 without being read; one within it arrives whole",
      async () => {
        const small = "a".repeat(1000);
        const ok = await get("/users/7", { method: "POST", body: small });
        assertEquals(ok.status, 200, ok.text);
        assertStringIncludes(ok.text, `body=${small}\n`);

        const big = await get("/users/7", { method: "POST", body: "b".repeat(2000) });
        assertEquals(big.status, 413);
        assertMatch(big.text, /^request body too large: function users accepts at most 1KB \(request .+\)\n$/);
        assertEquals(big.headers.get("connection"), "close");

        // Chunked: counted as it arrives, refused at the first byte past the cap.
        const head =
          `POST /users/7 HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
        const chunkedBig = await raw(cloud.port, head, chunked("c".repeat(3000), 500));
        assertStringIncludes(chunkedBig, "HTTP/1.1 413 Payload Too Large");
        assertStringIncludes(chunkedBig, "request body too large: function users accepts at most 1KB");
        const chunkedSmall = await raw(cloud.port, head, chunked("d".repeat(900), 300));
        assertStringIncludes(chunkedSmall, "HTTP/1.1 200 OK");
        assertStringIncludes(chunkedSmall, `body=${"d".repeat(900)}`);
        // Broken chunk framing is the client's error: 400 and no stack trace in the node's log. The bad chunk comes
        // once the function reads the body; if Deno finds the error before any read (a very slow node), it drops the
        // connection without an answer instead, which is fine too.
        const broken = await raw(cloud.port, head, ["5\r\nhello\r\n", 300, "5\r\nworldXX\r\n"]);
        if (broken !== "") {
          assertStringIncludes(broken, "HTTP/1.1 400 Bad Request");
          assertStringIncludes(broken, "request body for function users could not be read: it was malformed");
        }

        // The default cap (10MB): a 100 GiB Content-Length is answered before a byte of the body is sent, and the
        // node does not read on: the connection is cut soon after the answer (Deno alone would read all 100 GiB).
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: cloud.port });
        await conn.write(
          enc.encode(`POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${100 * 2 ** 30}\r\n\r\n`),
        );
        const buf = new Uint8Array(4096);
        const answer = new TextDecoder().decode(buf.subarray(0, (await conn.read(buf))!));
        assertStringIncludes(answer, "HTTP/1.1 413 Payload Too Large");
        assertStringIncludes(answer, "connection: close");
        assertStringIncludes(answer, "request body too large: function upload accepts at most 10MB");
        const mib = new Uint8Array(1 << 20);
        let sent = 0;
        const started = performance.now();
        let cut = false;
        while (performance.now() - started < 30_000) {
          try {
            sent += await conn.write(mib);
          } catch {
            cut = true;
            break;
          }
        }
        conn.close();
        assert(cut, `the node was still reading after ${sent >> 20} MiB and 30 s`);

        // The API has its own cap (5MB): JSON bodies and webhooks are small.
        const api = await raw(
          cloud.port,
          `POST /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${6 << 20}\r\nConnection: close\r\n\r\n`,
        );
        assertStringIncludes(api, "HTTP/1.1 413 Payload Too Large");
        assertStringIncludes(api, '"error":"request body too large: the API accepts at most 5MB"');
        const apiChunked = await raw(
          cloud.port,
          "POST /api/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
          chunked("x".repeat(6 << 20), 1 << 20),
        );
        assertStringIncludes(apiChunked, "HTTP/1.1 413 Payload Too Large");
        assertStringIncludes((await get("/users/8")).text, "id=8", "the function still answers");
      },
    );

    await t.step(
      "#8 a relayed request never reaches the API or git; a listing never shows a webhook secret",
      async () => {
        for (
          const header of [
            "X-Forwarded-For: 203.0.113.9",
            "X-Forwarded-Host: localhost",
            "X-Real-IP: 203.0.113.9",
            "Forwarded: for=203.0.113.9",
            "Via: 1.1 proxy",
          ]
        ) {
          const [name, value] = header.split(": ");
          const res = await hostRequest(cloud.port, "localhost", "/api/projects", { headers: { [name]: value } });
          assertEquals(res.status, 403, header);
          const body = JSON.parse(res.text);
          assertStringIncludes(body.error, `not relayed ones (this one has ${name.toLowerCase()})`);
          assertEquals(body.hint, "run tau commands on the node itself, or through an SSH tunnel");
        }
        // git through a proxy: refused too, with the same clear line.
        const gitUrl = `${cloud.url}/git/edge/config.git`;
        const relayedGit = await new Deno.Command("git", {
          args: ["-c", "http.extraHeader=X-Forwarded-For: 203.0.113.9", "ls-remote", gitUrl],
          stdout: "piped",
          stderr: "piped",
          env: { GIT_TERMINAL_PROMPT: "0" },
        }).output();
        assertEquals(relayedGit.code === 0, false, "git ls-remote through a proxy must fail");
        assertStringIncludes(new TextDecoder().decode(relayedGit.stderr), "403");
        await sh("git", ["ls-remote", gitUrl]); // and works from this machine directly

        const list = await (await fetch(`${cloud.url}/api/projects`)).json() as Record<string, unknown>[];
        const listed = list.find((p) => p.name === "edge")!;
        assertEquals(JSON.stringify(listed).includes("secret"), false, JSON.stringify(listed));
        assertStringIncludes((listed.webhook as { url: string }).url, "/api/webhooks/git/edge");
        const one = await (await fetch(`${cloud.url}/api/projects/edge`)).json();
        assertMatch(one.webhook.secret, /^[0-9a-f]{48}$/);
        const shown = await tau(["project", "edge", "--cloud", cloud.url]);
        assertEquals(shown.code, 0, shown.stderr);
        assertStringIncludes(shown.stdout, one.webhook.secret);

        // A webhook arrives through a proxy by design: it passes the door and is judged by its signature.
        const hook = await hostRequest(cloud.port, "localhost", "/api/webhooks/git/edge", {
          method: "POST",
          headers: { "X-Forwarded-For": "192.0.2.1", "X-Hub-Signature-256": "sha256=00" },
          body: "{}",
        });
        assertEquals(hook.status, 401, hook.text);
        assertStringIncludes(hook.text, "bad or missing X-Hub-Signature-256");
      },
    );

    await t.step("Host: a trailing dot is the same name; one that cannot be a host name is a 400", async () => {
      assertStringIncludes((await hostRequest(cloud.port, `${HOST}.`, "/users/9")).text, "id=9");
      assertStringIncludes((await hostRequest(cloud.port, `${HOST.toUpperCase()}:80`, "/users/9")).text, "id=9");
      const long = await hostRequest(cloud.port, "a".repeat(3000), "/");
      assertEquals(long.status, 400);
      assertMatch(
        long.text,
        /^bad request: Host header is 3000 characters, longer than any host name \(request .+\)\n$/,
      );
      const bad = await hostRequest(cloud.port, "a..b", "/");
      assertEquals(bad.status, 400);
      assertMatch(bad.text, /^bad request: Host header "a\.\.b" is not a host name \(request .+\)\n$/);
      assertEquals(cloud.output().includes("    at "), false, "no stack trace in the node's log");
    });

    await t.step("a malformed percent-escape in a function path is a 400", async () => {
      const res = await get("/users/%E0%A4%A");
      assertEquals(res.status, 400);
      assertMatch(
        res.text,
        /^bad request: %E0%A4%A in \/users\/%E0%A4%A is not valid percent-encoding \(request .+\)\n$/,
      );
      assertStringIncludes((await get("/users/%E0%A4%A4")).text, "id=\u0924", "a valid escape is decoded");
    });

    await t.step(
      "ranges: one range is 206, several or a malformed one get the whole file, past the end 416",
      async () => {
        const one = await get("/digits.txt", { headers: { Range: "bytes=2-4" } });
        assertEquals([one.status, one.text, one.headers.get("content-range")], [206, "234", "bytes 2-4/10"]);
        for (const range of ["bytes=0-1,2-3", "bytes=5-2", "items=0-1", "bytes=x"]) {
          const whole = await get("/digits.txt", { headers: { Range: range } });
          assertEquals([whole.status, whole.text], [200, "0123456789"], range);
        }
        const past = await get("/digits.txt", { headers: { Range: "bytes=10-" } });
        assertEquals([past.status, past.headers.get("content-range")], [416, "bytes */10"]);
      },
    );
    assert(!cloud.output().includes("gateway error"), cloud.output());
  } finally {
    await cloud.stop();
    await Deno.remove(work, { recursive: true });
  }
});
