/**
 * Remote access to a node's control plane (API and git over HTTP). Without a token only this machine's loopback gets
 * in (as `tau dev` always). With the cloud's admin token (`tau config generate` writes it; with a swarm key it is
 * derived from it, so every node of the cloud accepts the same one), any address gets in with
 * `Authorization: Bearer <token>` (the CLI after `tau login`) or HTTP Basic with the token as the password (git,
 * through `tau login`'s credential helper). The token is compared in constant time and never logged.
 */
export function bearerOrBasicSecret(req: Request): string | undefined {
  const header = req.headers.get("authorization");
  if (!header) return undefined;
  const [scheme, value] = header.split(/\s+/, 2);
  if (/^bearer$/i.test(scheme)) return value;
  if (/^basic$/i.test(scheme) && value) {
    try {
      const decoded = atob(value);
      return decoded.slice(decoded.indexOf(":") + 1);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export function sameSecret(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ (given.charCodeAt(i) || 0);
  return diff === 0;
}

export async function readAdminToken(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    const token = (await Deno.readTextFile(file)).trim();
    return token.length >= 16 ? token : undefined;
  } catch {
    return undefined;
  }
}
