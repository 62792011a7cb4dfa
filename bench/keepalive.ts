/**
 * Sequential requests over one keep-alive connection, each one's latency in ms: a small HTTP/1.1 client, since fetch
 * cannot set Host (the gateway routes by it). The answers measured always carry Content-Length. `check` sees each
 * whole answer (head and body) and throws when it is not the expected one.
 */
export async function keepAliveLatencies(
  target: { hostname: string; port: number },
  request: string,
  n: number,
  check: (answer: string) => void,
): Promise<number[]> {
  const conn = await Deno.connect(target);
  const req = new TextEncoder().encode(request);
  const buf = new Uint8Array(65536);
  const dec = new TextDecoder("latin1");
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await conn.write(req);
      let text = "";
      while (true) {
        const got = await conn.read(buf);
        if (got === null) throw new Error(`${target.hostname} closed the connection`);
        text += dec.decode(buf.subarray(0, got));
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) continue;
        const length = Number(text.slice(0, end).match(/content-length:\s*(\d+)/i)?.[1] ?? 0);
        if (text.length >= end + 4 + length) break;
      }
      check(text);
      out.push(performance.now() - t);
    }
  } finally {
    conn.close();
  }
  return out;
}
