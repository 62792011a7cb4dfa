/**
 * The upstream rule on its own, and the fetch it guards: a plain-http upstream is fetched but never follows a
 * redirect. (The same forms through POST /api/projects and `tau new project` are in tests/hardening_git_test.ts.)
 */
import { assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { TauError } from "../errors.ts";
import { git } from "./git.ts";
import { checkUpstreamUrl, fetchUpstreamBranches } from "./upstream.ts";

function refusal(raw: unknown): string {
  try {
    checkUpstreamUrl(raw);
  } catch (err) {
    if (!(err instanceof TauError)) throw err;
    assertEquals(err.status, 400);
    assertEquals(err.message.includes("\n"), false, "one line");
    return err.message;
  }
  throw new Error(`${JSON.stringify(raw)} was accepted`);
}

Deno.test("upstreams: only https, and http to loopback, are accepted", () => {
  assertEquals(checkUpstreamUrl("https://github.com/you/config.git"), "https://github.com/you/config.git");
  assertEquals(checkUpstreamUrl("https://git.example.com:8443/a/b"), "https://git.example.com:8443/a/b");
  assertEquals(checkUpstreamUrl("http://127.0.0.1:9000/code.git"), "http://127.0.0.1:9000/code.git");
  assertEquals(checkUpstreamUrl("http://[::1]:9000/code.git"), "http://[::1]:9000/code.git");
  assertEquals(checkUpstreamUrl("http://localhost/code.git"), "http://localhost/code.git");

  const cases: [unknown, string][] = [
    ["--upload-pack=id > /tmp/owned; false", "command-line option"],
    ["-oProxyCommand=id", "command-line option"],
    ["/root/private-repo", "local paths"],
    ["../other/repo.git", "local paths"],
    ["file:///root/private-repo", "file:// reads this machine's disk"],
    ["FILE:///etc", "file://"],
    ["ext::sh -c id", "spaces"],
    ["ext::id", "remote helpers"],
    ["fd::3", "remote helpers"],
    ["ssh://git@github.com/you/repo.git", "ssh upstreams"],
    ["git@github.com:you/repo.git", "ssh upstreams"],
    ["git://github.com/you/repo.git", "git:// is not a supported transport"],
    ["http://example.com/repo.git", "only to this machine"],
    ["http://10.0.0.1/repo.git", "only to this machine"],
    ["https://user:token@github.com/you/repo.git", "credentials"],
    ["https://github.com/you/repo.git?x=1", "no query"],
    ["https://github.com\\@127.0.0.1/x", "backslashes"],
    ["https://github.com/a b", "spaces"],
    ["https://", "not a valid URL"],
    [`https://example.com/${"a".repeat(3000)}`, "at most 2048"],
    [42, "must be a URL string"],
  ];
  for (const [raw, why] of cases) assertStringIncludes(refusal(raw), why, JSON.stringify(raw));
});

Deno.test("upstreams: a plain-http upstream is fetched, but never follows a redirect", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tau-upstream-" });
  // A repo served read-only over git's dumb HTTP protocol, and a second server that only redirects to it.
  const serveRepo = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    try {
      return new Response(await Deno.readFile(`${dir}${decodeURIComponent(new URL(req.url).pathname)}`));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const redirect = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    return Response.redirect(`http://127.0.0.1:${serveRepo.addr.port}${url.pathname}${url.search}`, 302);
  });
  try {
    const env = { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@l", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@l" };
    await git(["init", "-q", "--initial-branch=main", `${dir}/work`]);
    await git(["commit", "-q", "--allow-empty", "-m", "one"], { cwd: `${dir}/work`, env });
    await git(["clone", "-q", "--bare", `${dir}/work`, `${dir}/served.git`]);
    await git(["update-server-info"], { cwd: `${dir}/served.git` });
    await git(["init", "-q", "--bare", `${dir}/mirror.git`]);

    let message = "";
    try {
      await fetchUpstreamBranches(`${dir}/mirror.git`, `http://127.0.0.1:${redirect.addr.port}/served.git`);
    } catch (err) {
      message = (err as TauError).detail ?? "";
    }
    assertStringIncludes(message, "returned error: 302");
    assertEquals((await git(["for-each-ref"], { cwd: `${dir}/mirror.git` })).stdout.length, 0, "nothing fetched");

    await fetchUpstreamBranches(`${dir}/mirror.git`, `http://127.0.0.1:${serveRepo.addr.port}/served.git`);
    const heads = new TextDecoder().decode((await git(["for-each-ref"], { cwd: `${dir}/mirror.git` })).stdout);
    assertStringIncludes(heads, "refs/heads/main");
  } finally {
    await serveRepo.shutdown();
    await redirect.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
