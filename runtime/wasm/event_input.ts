/**
 * An event as an HTTP-shaped call: what a guest written against tau's request calls (module `tau`) or WAGI sees
 * when a pubsub message, a p2p command or a cron tick runs it. The method is POST, the path is `/`, the body is the
 * message or command data, and `x-tau-*` headers say what it is (docs/events.md). Taubyte's own event calls read
 * the event itself (CallInput.event).
 */
import type { CallInput, FunctionEvent } from "./outcome.ts";

export function eventHeaders(event: FunctionEvent): Headers {
  const h = new Headers({ "x-tau-event": event.kind });
  switch (event.kind) {
    case "pubsub":
      h.set("x-tau-channel", event.channel);
      break;
    case "p2p":
      h.set("x-tau-protocol", event.protocol);
      h.set("x-tau-command", event.command);
      h.set("x-tau-from", event.from);
      h.set("x-tau-to", event.to);
      break;
    case "cron":
      h.set("x-tau-schedule", event.schedule);
      h.set("x-tau-tick", new Date(event.at).toISOString());
      break;
    case "smartop":
      h.set("x-tau-resource", event.resource);
      break;
  }
  return h;
}

/** The input of a call an event makes (not a smartop: that one carries the guarded request, see the gateway). */
export function eventInput(event: Exclude<FunctionEvent, { kind: "smartop" }>, requestId: string): CallInput {
  const data = event.kind === "cron" ? null : event.data;
  const headers = eventHeaders(event);
  if (data) headers.set("content-length", String(data.length));
  return { method: "POST", path: "/", query: "", headers, body: data, params: {}, requestId, event };
}
