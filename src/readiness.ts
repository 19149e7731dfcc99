import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { listenersOn } from "./ports.js";
import type { PollResult } from "../spawners/spawner.js";

export type ReadyResult = { ok: true } | { ok: false; reason: string };

export interface WaitReadyOptions {
  timeoutMs: number;
  /**
   * The uid the server runs as (Spawner.serverUid). Only a listener this uid owns is the server: another local
   * user who binds the port first (or a wildcard address that takes its connections) would otherwise get the
   * user's traffic, cookies and tokens.
   */
  uid: number;
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
 * mean "not yet". The server is unmodified jupyterhub-singleuser, which cannot prove who it is over HTTP, so
 * the listening socket's owner is checked instead (/proc/net/tcp{,6}, before and after each probe): every
 * socket listening where a connection to the URL's host and port may land must belong to `uid`. One that
 * belongs to anyone else ends the wait at once: it has the port, so the real server cannot have it.
 */
export async function waitReady(url: string, opts: WaitReadyOptions): Promise<ReadyResult> {
  const deadline = Date.now() + opts.timeoutMs;
  const cancelled = { ok: false, reason: "cancelled" } as const;
  const { hostname, port } = listenAddress(url);
  let delay = FIRST_DELAY_MS;
  for (;;) {
    if (opts.signal?.aborted) return cancelled;
    const left = deadline - Date.now();
    if (left <= 0) return { ok: false, reason: `did not answer on ${url} within ${opts.timeoutMs / 1000} s` };
    const before = await owner(hostname, port, opts.uid);
    if (before !== "ours" && before !== "none") return before;
    // Nothing listening yet: a request could only be refused.
    if (before === "ours" && (await answers(url, Math.min(REQUEST_TIMEOUT_MS, left), opts.signal))) {
      // The listener may have changed hands while the request ran (the server died and someone took the port).
      const after = await owner(hostname, port, opts.uid);
      if (after === "ours") return { ok: true };
      if (after !== "none") return after;
    }
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

function listenAddress(url: string): { hostname: string; port: number } {
  const u = new URL(url);
  return { hostname: u.hostname, port: u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80 };
}

/**
 * "ours" when something listens for host:port and all of it is owned by `uid`; "none" when nothing does;
 * otherwise the refusal, naming the other owner. A table that cannot be read refuses too: this check is
 * what stands between a user's traffic and another user's process.
 */
async function owner(hostname: string, port: number, uid: number): Promise<"ours" | "none" | { ok: false; reason: string }> {
  let listeners;
  try {
    listeners = await listenersOn(hostname, port);
  } catch (e) {
    return { ok: false, reason: `cannot tell who listens on port ${port}: ${(e as Error).message}` };
  }
  const other = listeners.find((l) => l.uid !== uid);
  if (other) {
    const where = other.address.includes(":") ? `[${other.address}]:${port}` : `${other.address}:${port}`;
    return {
      ok: false,
      reason: `port ${port} is held by another user's process (uid ${other.uid}) listening on ${where}, not by the server (uid ${uid}); refusing to send traffic there (a new start picks another port)`,
    };
  }
  return listeners.length > 0 ? "ours" : "none";
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
