// The one hub every section of the conformance suite runs against, and the helpers they share. Importing this
// module registers the suite's beforeAll/afterAll: test/e2e/api-conformance.test.ts imports it first, then
// the sections in order, because later sections rely on the servers and users earlier ones made.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect } from "vitest";
import { Browser, CLI, HubProcess } from "../harness.js";

export const FAKE = join(import.meta.dirname, "../fixtures/fake-singleuser.mjs");
export const VERSION = "3.0.0"; // the config default
export const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
export const PAGINATION = "application/jupyterhub-pagination+json";
/** Set in the hub's environment; a user server must never see it (spec §1.1: never pass hub secrets). */
export const HUB_ONLY_ENV = "SLICEHUB_E2E_HUB_SECRET";

export let hub: HubProcess;

// ---------------------------------------------------------------------------------------------- helpers

/** Every response that does not come from a user server must carry X-JupyterHub-Version (spec §7.1). */
export function checkVersionHeader(what: string, headers: Headers): void {
  if (headers.has("x-fake-singleuser")) return;
  expect(headers.get("x-jupyterhub-version"), `X-JupyterHub-Version on ${what}`).toBe(VERSION);
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // Parsed JSON, loosely typed on purpose: the tests assert its shape.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface ReqOpts {
  method?: string;
  token?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is. */
  raw?: string;
  headers?: Record<string, string>;
}

/** One request with fetch, no redirects followed, body read and parsed when it is JSON. */
export async function req(path: string, opts: ReqOpts = {}): Promise<Reply> {
  const headers = new Headers(opts.headers);
  if (opts.token) headers.set("authorization", `token ${opts.token}`);
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers.set("content-type", "application/json");
  }
  const url = new URL(path, hub.url);
  const res = await fetch(url, { method: opts.method ?? "GET", headers, body, redirect: "manual" });
  const text = await res.text();
  checkVersionHeader(`${opts.method ?? "GET"} ${url.pathname}`, res.headers);
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A JupyterHub API error: the status, JSON content type and exactly {status, message}. */
export function expectApiError(r: Reply, status: number, message?: string | RegExp): void {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get("content-type")).toMatch(/^application\/json/);
  expect(r.json).toEqual({ status, message: message === undefined ? expect.any(String) : typeof message === "string" ? message : expect.stringMatching(message) });
}

/** node:http, for what fetch will not send as given (a Host header). */
export function rawRequest(path: string, headers: Record<string, string>, method = "GET", body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: "127.0.0.1", port: hub.port, path, method, headers, agent: false }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (data += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    r.on("error", reject);
    r.setTimeout(10_000, () => r.destroy(new Error("timeout")));
    r.end(body);
  });
}

/** A Browser whose every response is checked for the version header. */
export class CheckedBrowser extends Browser {
  override async request(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await super.request(path, init);
    checkVersionHeader(`${init.method ?? "GET"} ${path} (browser)`, res.headers);
    return res;
  }
}

export async function browserAs(name: string): Promise<CheckedBrowser> {
  const b = new CheckedBrowser(hub.url);
  await b.login(name);
  return b;
}

/** `slicehub token NAME --create` against the running hub's database, as an admin would. */
export async function cliToken(name: string, ...extra: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, "token", name, "--create", "--config", hub.configPath, ...extra], { timeout: 20_000 });
  const token = stdout.trim();
  expect(token).toMatch(/^\S{20,}$/);
  return token;
}

/** The environment of a running server's process, read from /proc (pid from the admin view's `state`). */
export async function serverEnv(admin: string, user: string, server = ""): Promise<Record<string, string>> {
  const r = await req(`/hub/api/users/${user}`, { token: admin });
  const pid = r.json.servers[server]?.state?.pid as number | undefined;
  expect(pid, `pid of ${user}/${server} in ${r.text}`).toBeGreaterThan(1);
  const env: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Wait for a daemon log line that appears after `since` (an offset into hub.output). */
export async function waitForNewLog(re: RegExp, since: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(`log ${re}`, async () => (re.test(hub.output.slice(since)) ? true : undefined), timeoutMs);
}

export const SERVER_MODEL_KEYS = ["name", "last_activity", "started", "pending", "ready", "stopped", "url", "user_options", "progress_url"];

// ------------------------------------------------------------------------------------------------ setup

export const tokens = { alice: "", bob: "", carol: "", admin: "", culler: "" };
export let alice: CheckedBrowser;
export let admin: CheckedBrowser;

beforeAll(async () => {
  // The daemon inherits this process's environment.
  process.env[HUB_ONLY_ENV] = "do-not-leak";
  try {
    hub = await HubProcess.start({
      config: {
        auth: { kind: "dev", admin_users: ["admin"] },
        // Named servers start disabled; a test turns them on by editing the config (live reload).
        spawner: { cmd: [process.execPath, FAKE], args: [], start_timeout_s: 20, stop_timeout_s: 5, named_servers: { limit: 0 } },
      },
    });
  } finally {
    delete process.env[HUB_ONLY_ENV];
  }
  tokens.alice = await cliToken("alice");
  tokens.bob = await cliToken("bob");
  tokens.carol = await cliToken("carol");
  alice = await browserAs("alice");
  admin = await browserAs("admin");
  // The admin's token is made the way a person would: in the browser, cookie + XSRF header.
  const made = await admin.request("/hub/api/users/admin/tokens", {
    method: "POST",
    headers: { "content-type": "application/json", "x-xsrftoken": await admin.csrf() },
    body: JSON.stringify({ note: "conformance admin" }),
  });
  expect(made.status).toBe(201);
  tokens.admin = ((await made.json()) as { token: string }).token;
  // The idle culler's token: exactly the scopes its README asks for, without admin:users.
  const culler = await req("/hub/api/users/admin/tokens", {
    method: "POST",
    token: tokens.admin,
    body: { note: "idle culler", scopes: ["list:users", "read:users:activity", "read:servers", "delete:servers"] },
  });
  expect(culler.status, culler.text).toBe(201);
  tokens.culler = culler.json.token;
}, 60_000);

afterAll(async () => {
  await hub?.destroy();
});

