// How the web process reaches the privileged helper when the helper runs as its own unit
// (slicehub-helper.service): one Unix stream socket in a directory only root and the service user's group can
// enter, carrying the same typed messages as the fork mode's IPC (protocol.ts), one JSON value per line.
// Lines are bounded both ways; the helper still parses every request with its schema.
import type net from "node:net";

/** root:<run_as group>, mode 0750: the socket inside is reachable by root and the service user only. */
export const HELPER_SOCKET_DIR = "/run/slicehub-helper";
export const HELPER_SOCKET = `${HELPER_SOCKET_DIR}/helper.sock`;
/** The largest request the helper reads (ssh-sessions may list 100 000 user names); longer ends the connection. */
export const MAX_REQUEST_BYTES = 8 << 20;
/** The largest answer the web process reads (unit lists, journal tails). */
export const MAX_ANSWER_BYTES = 64 << 20;

export type Line = { ok: true; value: unknown } | { ok: false; why: string };

/**
 * Reads newline-delimited JSON from `sock`. A line that is not JSON is passed on as `{ ok: false }` (the
 * stream stays usable); a line longer than `max` bytes is reported once, and nothing more is read.
 */
export function readLines(sock: net.Socket, max: number, onLine: (line: Line) => void, onTooLong: () => void): void {
  let parts: Buffer[] = [];
  let size = 0;
  let dead = false;
  sock.on("data", (chunk: Buffer) => {
    if (dead) return;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      const line = size ? Buffer.concat([...parts, piece]) : piece;
      parts = [];
      size = 0;
      start = nl + 1;
      if (line.length > max) {
        dead = true;
        return onTooLong();
      }
      let value: unknown;
      try {
        value = JSON.parse(line.toString("utf8"));
      } catch {
        onLine({ ok: false, why: "not JSON" });
        if (dead || sock.destroyed) return;
        continue;
      }
      onLine({ ok: true, value });
      if (dead || sock.destroyed) return;
    }
    if (start < chunk.length) {
      parts.push(chunk.subarray(start));
      size += chunk.length - start;
      if (size > max) {
        dead = true;
        parts = [];
        onTooLong();
      }
    }
  });
}

/** One value as one line; `done` gets the write's error, if any. */
export function writeLine(sock: net.Socket, value: unknown, done?: (err?: Error | null) => void): void {
  if (sock.destroyed || !sock.writable) {
    done?.(new Error("the connection is closed"));
    return;
  }
  sock.write(`${JSON.stringify(value)}\n`, done);
}
