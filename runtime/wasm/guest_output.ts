/**
 * Bounds on what a guest can make the host hold: log volume per call (what is over is counted, never copied, and
 * replaced by one marker line) and response headers (count and bytes; beyond, the call answers 502). Volume per
 * second is bounded where every call's logs meet, in the runtime (LogRate).
 */
import type { LogEntry } from "./outcome.ts";

/** Log bytes one call may write (log, trace, stdout/stderr in SDK mode, stderr in WAGI mode). */
export const LOG_BYTES_PER_CALL = 64 * 1024;
/** Log bytes a function may write per second across its calls; a node-wide bound is NODE_LOG_BYTES_PER_SECOND. */
export const LOG_BYTES_PER_SECOND = 256 * 1024;
export const NODE_LOG_BYTES_PER_SECOND = 1024 * 1024;
/** Response headers a guest may set; past either bound the request answers 502 and the log says why. */
export const MAX_RESPONSE_HEADERS = 100;
export const MAX_RESPONSE_HEADER_BYTES = 64 * 1024;

const decoder = new TextDecoder();
const kib = (n: number) => n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`;

/** Thrown by host calls when the guest's response breaks a bound; answered 502 with the message in the log. */
export class BadResponse extends Error {}

/** The logs of one call, at most LOG_BYTES_PER_CALL of them. */
export class CallLog {
  private used = 0;
  private dropped = 0;
  private stderr: Uint8Array[] = [];

  constructor(readonly entries: LogEntry[] = []) {}

  /** One line from guest bytes (a view into its memory: only what fits is decoded). */
  line(stream: LogEntry["stream"], bytes: Uint8Array): void {
    const take = this.take(bytes.length);
    if (take > 0) this.entries.push({ stream, text: decoder.decode(bytes.subarray(0, take)).replace(/\n$/, "") });
  }

  text(stream: LogEntry["stream"], text: string): void {
    const take = this.take(text.length);
    if (take > 0) this.entries.push({ stream, text: text.slice(0, take) });
  }

  /** WAGI stderr: bytes collected (what fits, copied) and split into lines at the end of the call. */
  stderrBytes(bytes: Uint8Array): void {
    const take = this.take(bytes.length);
    if (take > 0) this.stderr.push(bytes.slice(0, take));
  }

  /** Flushes collected stderr into lines and adds the marker line if anything was dropped. */
  finish(): LogEntry[] {
    if (this.stderr.length > 0) {
      const parts = this.stderr.map((b) => decoder.decode(b, { stream: true }));
      for (const line of parts.join("").split("\n")) {
        if (line.length > 0) this.entries.push({ stream: "stderr", text: line });
      }
      this.stderr = [];
    }
    if (this.dropped > 0) {
      this.entries.push({
        stream: "trap",
        text: `log output over ${kib(LOG_BYTES_PER_CALL)} for this call: ${this.dropped} bytes dropped`,
      });
      this.dropped = 0;
    }
    return this.entries;
  }

  private take(n: number): number {
    const take = Math.max(0, Math.min(n, LOG_BYTES_PER_CALL - this.used));
    this.used += take;
    this.dropped += n - take;
    return take;
  }
}

/** Counts response headers as a guest adds them. */
export class HeaderBudget {
  private count = 0;
  private bytes = 0;

  /** Throws BadResponse once the headers exceed either bound; call before decoding the header. */
  add(nameBytes: number, valueBytes: number): void {
    this.count++;
    this.bytes += nameBytes + valueBytes + 4;
    if (this.count > MAX_RESPONSE_HEADERS) {
      throw new BadResponse(`response sets more than ${MAX_RESPONSE_HEADERS} headers`);
    }
    if (this.bytes > MAX_RESPONSE_HEADER_BYTES) {
      throw new BadResponse(`response headers are over ${kib(MAX_RESPONSE_HEADER_BYTES)}`);
    }
  }
}

/** Per-second log volume, per function and node-wide: lines over the rate are dropped and counted. */
export class LogRate {
  private windowStart = 0;
  private readonly perKey = new Map<string, { bytes: number; dropped: number; name: string }>();
  private nodeBytes = 0;

  constructor(
    private readonly perSecond = LOG_BYTES_PER_SECOND,
    private readonly nodePerSecond = NODE_LOG_BYTES_PER_SECOND,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Filters one call's lines. When a new one-second window starts, returns marker lines for what the previous
   * window dropped (one per function).
   */
  admit(key: string, name: string, lines: LogEntry[]): { kept: LogEntry[]; markers: { name: string; text: string }[] } {
    const now = this.now();
    const markers: { name: string; text: string }[] = [];
    if (now - this.windowStart >= 1000) {
      for (const s of this.perKey.values()) {
        if (s.dropped > 0) {
          markers.push({
            name: s.name,
            text: `log output over ${kib(this.perSecond)}/s: ${s.dropped} lines dropped`,
          });
        }
      }
      this.perKey.clear();
      this.nodeBytes = 0;
      this.windowStart = now;
    }
    let s = this.perKey.get(key);
    if (!s) this.perKey.set(key, s = { bytes: 0, dropped: 0, name });
    const kept: LogEntry[] = [];
    for (const l of lines) {
      const size = l.text.length + 1;
      if (s.bytes + size > this.perSecond || this.nodeBytes + size > this.nodePerSecond) {
        s.dropped++;
        continue;
      }
      s.bytes += size;
      this.nodeBytes += size;
      kept.push(l);
    }
    return { kept, markers };
  }
}
