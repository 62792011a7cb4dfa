/**
 * A small OCI distribution registry for tests, on 127.0.0.1 only: serves manifests and blobs of local OCI
 * layouts and, like public registries, demands a bearer token (401 + WWW-Authenticate, token from /token).
 * With `auth.mode` "basic" it wants Basic credentials on every request instead (a private registry); with
 * "token" its token service hands out tokens only for the right Basic credentials (private images).
 */
export interface TestRegistry {
  url: string;
  /** requests seen, e.g. "GET /v2/busybox/manifests/latest 401" */
  log: string[];
  /** replace a blob's bytes as served (to test digest checks) */
  corrupt(digest: string): void;
  close(): Promise<void>;
}

const TOKEN = "test-token-" + crypto.randomUUID();

/** `repos` maps a repository name ("library/busybox") to an OCI layout directory; tags come from its index. */
export function startTestRegistry(
  repos: Record<string, string>,
  auth?: { mode: "basic" | "token"; username: string; password: string },
): TestRegistry {
  const basic = auth ? `Basic ${btoa(`${auth.username}:${auth.password}`)}` : "";
  const log: string[] = [];
  const corrupted = new Set<string>();
  const controller = new AbortController();
  let url = "";
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: () => {} },
    async (req) => {
      const res = await handle(req);
      log.push(`${req.method} ${new URL(req.url).pathname} ${res.status}`);
      return res;
    },
  );
  url = `http://127.0.0.1:${server.addr.port}`;

  async function handle(req: Request): Promise<Response> {
    const u = new URL(req.url);
    if (auth?.mode === "basic") {
      if (req.headers.get("authorization") !== basic) {
        return new Response("unauthorized", { status: 401, headers: { "www-authenticate": 'Basic realm="test"' } });
      }
      return await serveContent(u);
    }
    if (u.pathname === "/token") {
      if (auth?.mode === "token" && req.headers.get("authorization") !== basic) {
        return new Response("bad credentials", { status: 401 });
      }
      if (u.searchParams.get("service") !== "test-registry" || !u.searchParams.get("scope")?.endsWith(":pull")) {
        return new Response("bad token request", { status: 400 });
      }
      return Response.json({ token: TOKEN });
    }
    if (req.headers.get("authorization") !== `Bearer ${TOKEN}`) {
      const repo = u.pathname.match(/^\/v2\/(.+)\/(manifests|blobs)\//)?.[1] ?? "";
      return new Response("unauthorized", {
        status: 401,
        headers: {
          "www-authenticate": `Bearer realm="${url}/token",service="test-registry",scope="repository:${repo}:pull"`,
        },
      });
    }
    return await serveContent(u);
  }

  async function serveContent(u: URL): Promise<Response> {
    const m = u.pathname.match(/^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/);
    const dir = m && repos[m[1]];
    if (!m || !dir) return new Response("not found", { status: 404 });
    let digest = m[3];
    if (m[2] === "manifests" && !digest.startsWith("sha256:")) {
      const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
      const entry = index.manifests.find((d: { annotations?: Record<string, string> }) =>
        d.annotations?.["org.opencontainers.image.ref.name"] === digest
      );
      if (!entry) return new Response("unknown tag", { status: 404 });
      digest = entry.digest;
    }
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await Deno.readFile(`${dir}/blobs/sha256/${digest.replace(/^sha256:/, "")}`);
    } catch {
      return new Response("unknown blob", { status: 404 });
    }
    if (corrupted.has(digest)) {
      bytes = bytes.slice();
      bytes[bytes.length - 1] ^= 0xff;
    }
    const headers: Record<string, string> = { "docker-content-digest": digest };
    if (m[2] === "manifests") headers["content-type"] = JSON.parse(new TextDecoder().decode(bytes)).mediaType;
    return new Response(bytes, { headers });
  }

  return {
    url,
    log,
    corrupt: (d) => corrupted.add(d),
    close: async () => {
      controller.abort();
      await server.finished;
    },
  };
}

/**
 * Rewrites a layout (as written by writeOciLayout) so its tag points at an image index offering `other` (another
 * architecture, whose manifest does not exist) before this machine's: a client must choose by platform.
 */
export async function wrapInIndex(dir: string, tag: string, arch: string, other: string): Promise<void> {
  const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
  const real = index.manifests[0];
  const bogus = "sha256:" + "0".repeat(64);
  const list = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      { mediaType: real.mediaType, digest: bogus, size: 1, platform: { os: "linux", architecture: other } },
      {
        mediaType: real.mediaType,
        digest: real.digest,
        size: real.size,
        platform: { os: "linux", architecture: arch },
      },
    ],
  }));
  const hex = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", list)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await Deno.writeFile(`${dir}/blobs/sha256/${hex}`, list);
  index.manifests = [{
    mediaType: "application/vnd.oci.image.index.v1+json",
    digest: `sha256:${hex}`,
    size: list.length,
    annotations: { "org.opencontainers.image.ref.name": tag },
  }];
  await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify(index));
}
