/// <reference lib="deno.worker" />
/** The config-parse Worker (runtime/schema/off_thread.ts): parses one config tree per message. */
import { parseProjectConfig } from "./parse.ts";
import type { ParseReply, ParseRequest } from "./off_thread.ts";

self.onmessage = (e: MessageEvent<ParseRequest>) => {
  const { id, files } = e.data;
  let reply: ParseReply;
  try {
    reply = { id, ok: true, result: parseProjectConfig(files) };
  } catch (err) {
    reply = { id, ok: false, error: (err as Error).message ?? String(err) };
  }
  self.postMessage(reply);
};
