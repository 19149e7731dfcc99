import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { PollResult } from "./spawner.js";

export type ReadyResult = { ok: true } | { ok: false; reason: string };

export interface WaitReadyOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Checked between attempts so a server that died is reported at once, not after the timeout. */
  isAlive?: () => Promise<PollResult>;
}

const REQUEST_TIMEOUT_MS = 2_000;
const FIRST_DELAY_MS = 20;
const MAX_DELAY_MS = 500;

/**
 * Waits until `GET url` answers the way JupyterHub checks a new server: redirects are not followed and any
 * status below 500 (302 to the login, 404, …) means the server is up; refused connections, 5xx and timeouts
 * mean "not yet".
 */
export async function waitReady(url: string, opts: WaitReadyOptions): Promise<ReadyResult> {
  const deadline = Date.now() + opts.timeoutMs;
  const cancelled = { ok: false, reason: "cancelled" } as const;
  let delay = FIRST_DELAY_MS;
  for (;;) {
    if (opts.signal?.aborted) return cancelled;
    const left = deadline - Date.now();
    if (left <= 0) return { ok: false, reason: `did not answer on ${url} within ${opts.timeoutMs / 1000} s` };
    if (await answers(url, Math.min(REQUEST_TIMEOUT_MS, left), opts.signal)) return { ok: true };
    if (opts.isAlive) {
      const alive = await opts.isAlive();
      if (!alive.running) return { ok: false, reason: alive.reason };
    }
    try {
      await sleep(Math.min(delay, Math.max(0, deadline - Date.now())), undefined, { signal: opts.signal });
    } catch {
      return cancelled;
    }
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
}

function answers(url: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    // agent: false so a half-started server never gets a kept-alive socket from an earlier attempt.
    const req = http.get(url, { agent: false, signal }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 500);
    });
    const timer = setTimeout(() => req.destroy(), timeoutMs);
    req.on("close", () => clearTimeout(timer));
    req.on("error", () => resolve(false));
  });
}
