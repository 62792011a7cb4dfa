/**
 * WebSocket clients for tests and benches: Deno's own WebSocket, in a child process whose /etc/hosts maps the
 * project's domain to the node's loopback address. Deno's WebSocket cannot set the Host header (it is a forbidden
 * header), and the gateway routes by Host; so the child runs in a mount namespace of its own (`unshare -m`, network
 * untouched) with a hosts file bind-mounted over /etc/hosts, and dials the real name. Nothing outside the child
 * sees the mapping.
 *
 *   const ws = await startWsClients({ "chat.localtau": "127.0.0.1" });
 *   await ws.open("a", "ws://chat.localtau:8080/ws-Qm.../orders");   // resolves once open (or throws with why)
 *   ws.send("a", "hello");
 *   const m = await ws.next("a");                                       // { data: "...", binary: false }
 *   await ws.stop();
 *
 * `openMany(group, url, n)` opens n clients; `nextAll(group)` resolves when every one of them got the next message,
 * with the time the last one got it (performance.timeOrigin + now(), the same clock in both processes).
 */

const SELF = new URL(import.meta.url).pathname;

export interface WsMessage {
  data: string;
  binary: boolean;
  at: number;
}

export interface WsClose {
  code: number;
  reason: string;
}

export interface WsClients {
  open(id: string, url: string): Promise<void>;
  /** Opens n clients as one group (ids group.0 ... group.n-1). */
  openMany(group: string, url: string, n: number): Promise<void>;
  send(id: string, data: string): void;
  next(id: string): Promise<WsMessage>;
  /** The next message every client of the group received, and when the last one got it. */
  nextAll(group: string): Promise<{ data: string; last: number }>;
  closed(id: string): Promise<WsClose>;
  close(id: string): void;
  stop(): Promise<void>;
}

type Event =
  | { ev: "open"; id: string }
  | { ev: "error"; id: string; message: string }
  | { ev: "message"; id: string; data: string; binary: boolean; at: number }
  | { ev: "all"; id: string; data: string; last: number }
  | { ev: "close"; id: string; code: number; reason: string };

/** Text split into lines (JSR's std is not reachable here, hence our own). */
class TextLineStream extends TransformStream<string, string> {
  constructor() {
    let rest = "";
    super({
      transform(chunk, controller) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        for (const p of parts) controller.enqueue(p);
      },
      flush(controller) {
        if (rest) controller.enqueue(rest);
      },
    });
  }
}

class Queue<T> {
  items: T[] = [];
  waiting: ((v: T) => void)[] = [];
  push(v: T) {
    const w = this.waiting.shift();
    if (w) w(v);
    else this.items.push(v);
  }
  next(): Promise<T> {
    const v = this.items.shift();
    return v !== undefined ? Promise.resolve(v) : new Promise((r) => this.waiting.push(r));
  }
}

export async function startWsClients(hosts: Record<string, string>): Promise<WsClients> {
  const file = await Deno.makeTempFile({ prefix: "tau-ws-hosts-" });
  await Deno.writeTextFile(
    file,
    "127.0.0.1 localhost\n" + Object.entries(hosts).map(([name, ip]) => `${ip} ${name}\n`).join(""),
  );
  const child = new Deno.Command("unshare", {
    args: [
      "-m",
      "sh",
      "-c",
      'mount --bind "$0" /etc/hosts && exec "$1" run -A "$2" child',
      file,
      Deno.execPath(),
      SELF,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  const queues = new Map<string, Queue<Event>>();
  const queue = (id: string, kind: string) => {
    const key = `${kind} ${id}`;
    let q = queues.get(key);
    if (!q) queues.set(key, q = new Queue());
    return q;
  };
  const reading = (async () => {
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(new TextLineStream());
    for await (const line of lines) {
      if (!line) continue;
      const e = JSON.parse(line) as Event;
      const kind = e.ev === "error" ? "open" : e.ev;
      queue(e.id, kind).push(e);
    }
  })();
  const command = (v: unknown) => writer.write(enc.encode(JSON.stringify(v) + "\n"));
  const opened = async (id: string) => {
    const e = await queue(id, "open").next();
    if (e.ev === "error") throw new Error(`WebSocket ${id}: ${e.message}`);
  };
  return {
    async open(id, url) {
      await command({ op: "open", id, url });
      await opened(id);
    },
    async openMany(group, url, n) {
      await command({ op: "open", id: group, url, n });
      await opened(group);
    },
    send(id, data) {
      void command({ op: "send", id, data });
    },
    async next(id) {
      const e = await queue(id, "message").next() as Extract<Event, { ev: "message" }>;
      return { data: e.data, binary: e.binary, at: e.at };
    },
    async nextAll(group) {
      const e = await queue(group, "all").next() as Extract<Event, { ev: "all" }>;
      return { data: e.data, last: e.last };
    },
    async closed(id) {
      const e = await queue(id, "close").next() as Extract<Event, { ev: "close" }>;
      return { code: e.code, reason: e.reason };
    },
    close(id) {
      void command({ op: "close", id });
    },
    async stop() {
      await writer.close().catch(() => {});
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await child.status;
      clearTimeout(timer);
      await reading.catch(() => {});
      await Deno.remove(file).catch(() => {});
    },
  };
}

/** The child: runs the commands read on stdin, one JSON line each, until stdin ends. */
async function runChild() {
  const out = (v: unknown) => console.log(JSON.stringify(v));
  const sockets = new Map<string, WebSocket[]>();
  const now = () => performance.timeOrigin + performance.now();
  const dec = new TextDecoder();
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).pipeThrough(new TextLineStream());
  for await (const line of lines) {
    if (!line) continue;
    const c = JSON.parse(line) as { op: string; id: string; url?: string; n?: number; data?: string };
    if (c.op === "open") {
      const n = c.n ?? 0;
      const group: WebSocket[] = [];
      sockets.set(c.id, group);
      let open = 0;
      // Per message data: how many clients of the group got it.
      const got = new Map<string, number>();
      for (let i = 0; i < Math.max(1, n); i++) {
        const ws = new WebSocket(c.url!);
        ws.binaryType = "arraybuffer";
        group.push(ws);
        let failed = false;
        ws.onopen = () => {
          if (++open === Math.max(1, n)) out({ ev: "open", id: c.id });
        };
        ws.onerror = (e) => {
          if (ws.readyState !== WebSocket.OPEN && !failed && open < Math.max(1, n)) {
            failed = true;
            out({ ev: "error", id: c.id, message: (e as ErrorEvent).message ?? "error" });
          }
        };
        ws.onclose = (e) => out({ ev: "close", id: n ? `${c.id}.${i}` : c.id, code: e.code, reason: e.reason });
        ws.onmessage = (e) => {
          const binary = typeof e.data !== "string";
          const data = binary ? dec.decode(new Uint8Array(e.data as ArrayBuffer)) : e.data as string;
          if (!n) return out({ ev: "message", id: c.id, data, binary, at: now() });
          const count = (got.get(data) ?? 0) + 1;
          if (count === n) {
            got.delete(data);
            out({ ev: "all", id: c.id, data, last: now() });
          } else got.set(data, count);
        };
      }
    } else if (c.op === "send") {
      sockets.get(c.id)?.[0]?.send(c.data!);
    } else if (c.op === "close") {
      for (const ws of sockets.get(c.id) ?? []) ws.close();
    }
  }
  for (const group of sockets.values()) for (const ws of group) ws.close();
  Deno.exit(0);
}

if (import.meta.main && Deno.args[0] === "child") await runChild();
