// Runs the real daemon as a subprocess (`node dist/slicehub.js start --config …`, what `npm start` runs) on a free loopback port with
// a temporary config and state, and a small cookie-jar browser to talk to it. `npm test` builds dist first.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import WebSocket from "ws";
import http from "node:http";
import https, { get as httpsGet } from "node:https";
import { freePort } from "../../src/ports.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CLI = join(ROOT, "dist/slicehub.js");
export const SINGLEUSER = "/usr/bin/jupyterhub-singleuser";
const isRoot = process.getuid?.() === 0;

export interface HubOptions {
  /** Merged over the harness defaults (listen, state_dir, a local spawner running jupyterhub-singleuser). */
  config?: Record<string, unknown>;
}

export class HubProcess {
  readonly url: string;
  readonly configPath: string;
  readonly stateDir: string;
  proc: ChildProcess | undefined;
  output = "";

  private constructor(
    readonly dir: string,
    readonly port: number,
    public config: Record<string, unknown>,
  ) {
    // An https listener (tls.cert_file set; test/e2e/https.test.ts) is https://127.0.0.1:PORT.
    this.url = `${(config.tls as { cert_file?: string } | undefined)?.cert_file ? "https" : "http"}://127.0.0.1:${port}`;
    this.configPath = join(dir, "config.json");
    this.stateDir = join(dir, "state");
  }

  static async start(opts: HubOptions = {}): Promise<HubProcess> {
    const dir = mkdtempSync(join(tmpdir(), "slicehub-e2e-"));
    const port = await freePort();
    const spawner = {
      kind: "local",
      cmd: [SINGLEUSER],
      args: isRoot ? ["--allow-root"] : [],
      start_timeout_s: 60,
      stop_timeout_s: 5,
      ...((opts.config?.spawner as object | undefined) ?? {}),
    };
    const scheme = (opts.config?.tls as { cert_file?: string } | undefined)?.cert_file ? "https" : "http";
    const config = { listen: `${scheme}://127.0.0.1:${port}`, state_dir: "./state", log_level: "debug", ...opts.config, spawner };
    const hub = new HubProcess(dir, port, config);
    hub.writeConfig(config);
    await hub.launch();
    return hub;
  }

  writeConfig(config: Record<string, unknown>): void {
    this.config = config;
    writeFileSync(this.configPath, JSON.stringify(config, null, 2));
  }

  writeRawConfig(text: string): void {
    writeFileSync(this.configPath, text);
  }

  async launch(): Promise<void> {
    // Servers start in $HOME: give them a throw-away one so tests never write into the real home.
    const home = join(this.dir, "home");
    mkdirSync(home, { recursive: true });
    const proc = spawn(process.execPath, [CLI, "start", "--config", this.configPath], {
      cwd: this.dir,
      env: { ...process.env, HOME: home },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    proc.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    proc.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`slicehub exited with ${proc.exitCode}:\n${this.output}`);
      try {
        if ((await probe(`${this.url}/hub/api`)) === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`slicehub did not answer within 20 s:\n${this.output}`);
  }

  /** Wait until the daemon's log has a line matching `re` (bounded). */
  async waitForLog(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const line = this.output.split("\n").find((l) => re.test(l));
      if (line) return line;
      await sleep(50);
    }
    throw new Error(`no log line matching ${re} within ${timeoutMs} ms:\n${this.output.slice(-4000)}`);
  }

  kill9(): void {
    this.proc?.kill("SIGKILL");
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    await Promise.race([exited, sleep(10_000)]);
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  }

  /** Process groups of every server the store still thinks is alive. */
  serverProcessGroups(): number[] {
    const db = new Database(join(this.stateDir, "slicehub.sqlite"), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare("SELECT spawner_state FROM servers WHERE spawner_state IS NOT NULL").all() as { spawner_state: string }[];
      return rows.map((r) => (JSON.parse(r.spawner_state) as { pgid: number }).pgid).filter((n) => Number.isInteger(n) && n > 1);
    } finally {
      db.close();
    }
  }

  /** The process group of a user's default server, from the store (undefined when it has none). */
  serverProcessGroupOf(user: string): number | undefined {
    const db = new Database(join(this.stateDir, "slicehub.sqlite"), { readonly: true, fileMustExist: true });
    try {
      const row = db
        .prepare("SELECT s.spawner_state FROM servers s JOIN users u ON u.id = s.user_id WHERE u.name = ? AND s.name = '' AND s.spawner_state IS NOT NULL")
        .get(user) as { spawner_state: string } | undefined;
      return row ? (JSON.parse(row.spawner_state) as { pgid: number }).pgid : undefined;
    } finally {
      db.close();
    }
  }

  /** Stop the daemon and kill whatever servers it left, then remove the temp dir. */
  async destroy(): Promise<void> {
    await this.stop();
    let groups: number[] = [];
    try {
      groups = this.serverProcessGroups();
    } catch {
      // no database yet
    }
    for (const g of groups) {
      try {
        process.kill(-g, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export { groupAlive } from "../proc.js";

/** The status of a GET; an https listener's certificate is not checked here (its tests check it). */
function probe(url: string): Promise<number> {
  if (!url.startsWith("https:")) return fetch(url).then((r) => r.status);
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { rejectUnauthorized: false, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/** A reply read whole by rawRequest. */
export interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One request exactly as given (node:http or node:https; no header of node's own beyond Host, and
 * Content-Length for a body; no redirect followed): https trusts only `ca` when given; `localAddress` picks
 * the client address (127.0.0.3 is not a trusted proxy).
 */
export function rawRequest(url: string, opts: { ca?: string; method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {}): Promise<RawReply> {
  const u = new URL(url);
  const mod = u.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      { method: opts.method ?? "GET", headers: opts.headers, ca: opts.ca, localAddress: opts.localAddress, agent: false, timeout: 10_000 } as https.RequestOptions,
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(opts.body);
  });
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

/** A minimal browser: a cookie jar (name + path, no domains: everything is one origin) and manual redirects. */
export class Browser {
  readonly cookies: StoredCookie[] = [];
  constructor(readonly base: string) {}

  /** The Cookie header this jar sends to `path`. */
  cookieHeader(path: string): string {
    return this.cookies
      .filter((c) => path === c.path || path.startsWith(c.path.endsWith("/") ? c.path : `${c.path}/`) || path === c.path.replace(/\/$/, ""))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
  }

  cookie(name: string): string | undefined {
    return this.cookies.find((c) => c.name === name)?.value;
  }

  private store(res: Response, requestPath: string): void {
    this.remember(res.headers.getSetCookie(), requestPath);
  }

  /** Keeps the cookies of these Set-Cookie lines, received for `requestPath` (also from a node:http response). */
  remember(setCookie: readonly string[], requestPath: string): void {
    for (const line of setCookie) {
      const [pair, ...attrs] = line.split(";").map((s) => s.trim());
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq);
      let value = pair!.slice(eq + 1);
      let path = requestPath.replace(/\/[^/]*$/, "/") || "/";
      let expired = false;
      for (const a of attrs) {
        const [k, v = ""] = a.split("=");
        const key = k!.toLowerCase();
        if (key === "path") path = v;
        if (key === "max-age" && Number(v) <= 0) expired = true;
        if (key === "expires" && Date.parse(v) < Date.now()) expired = true;
      }
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
      const i = this.cookies.findIndex((c) => c.name === name && c.path === path);
      if (i >= 0) this.cookies.splice(i, 1);
      if (!expired && value !== "") this.cookies.push({ name, value, path });
    }
  }

  /** One request, no redirect following. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const url = new URL(path, this.base);
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(url.pathname);
    if (cookie && !headers.has("cookie")) headers.set("cookie", cookie);
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    this.store(res, url.pathname);
    return res;
  }

  /** Follow redirects (GET after each), at most `max`. Returns the final response and the hops taken. */
  async follow(path: string, init: RequestInit = {}, max = 10): Promise<{ res: Response; hops: string[] }> {
    const hops: string[] = [];
    let res = await this.request(path, init);
    let current = new URL(path, this.base);
    while (res.status >= 300 && res.status < 400 && res.headers.get("location")) {
      if (hops.length >= max) throw new Error(`too many redirects: ${hops.join(" -> ")}`);
      await res.arrayBuffer();
      current = new URL(res.headers.get("location")!, current);
      hops.push(current.pathname + current.search);
      res = await this.request(current.pathname + current.search);
    }
    return { res, hops };
  }

  /** The dev login form: fetch it (for its anti-forgery field), post the name. */
  async login(name: string): Promise<void> {
    const page = await (await this.request("/hub/login")).text();
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page)?.[1];
    if (!xsrf) throw new Error("no _xsrf on the login page");
    const res = await this.request("/hub/login", {
      method: "POST",
      body: new URLSearchParams({ username: name, _xsrf: xsrf, next: "/hub/home" }),
    });
    if (res.status !== 302) throw new Error(`login as ${name} failed: ${res.status} ${await res.text()}`);
  }

  /** The session's CSRF token, as the home page embeds it in its forms. */
  async csrf(): Promise<string> {
    const page = await (await this.request("/hub/home")).text();
    const token = /name="_xsrf" value="([^"]+)"/.exec(page)?.[1];
    if (!token) throw new Error("no _xsrf on the home page");
    return token;
  }

  async postForm(path: string, fields: Record<string, string>): Promise<Response> {
    return this.request(path, { method: "POST", body: new URLSearchParams(fields) });
  }
}

/** Read a server-sent-events stream to its end (bounded), returning the parsed `data:` events. */
export async function readSse(res: Response, timeoutMs = 90_000): Promise<Record<string, unknown>[]> {
  const events: Record<string, unknown>[] = [];
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const timer = sleep(deadline - Date.now()).then(() => ({ done: true, value: undefined }) as const);
    const { done, value } = await Promise.race([reader.read(), timer]);
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const chunk = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = chunk
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      if (data) events.push(JSON.parse(data) as Record<string, unknown>);
    }
  }
  await reader.cancel().catch(() => undefined);
  return events;
}

/**
 * Execute code on a kernel over its websocket channel; resolves with everything it printed. `headers` add to the
 * upgrade request (e.g. a `host` other than the URL's).
 */
export async function runOnKernel(wsUrl: string, cookie: string, code: string, headers: Record<string, string> = {}): Promise<string> {
  const ws = new WebSocket(wsUrl, { headers: { ...headers, cookie } });
  const session = randomUUID();
  const msgId = randomUUID();
  let printed = "";
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply from the kernel within 30 s; printed so far: ${printed}`)), 30_000);
      ws.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      ws.on("unexpected-response", (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`websocket upgrade refused: ${res.statusCode}`));
      });
      ws.on("open", () => {
        ws.send(
          JSON.stringify({
            header: { msg_id: msgId, username: "", session, msg_type: "execute_request", version: "5.3", date: new Date().toISOString() },
            parent_header: {},
            metadata: {},
            content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
            buffers: [],
            channel: "shell",
          }),
        );
      });
      ws.on("message", (data) => {
        const msg = JSON.parse(data.toString()) as { msg_type: string; parent_header: { msg_id?: string }; content: { text?: string; execution_state?: string } };
        if (msg.parent_header.msg_id !== msgId) return;
        if (msg.msg_type === "stream") printed += msg.content.text ?? "";
        if (msg.msg_type === "status" && msg.content.execution_state === "idle") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    ws.close();
  }
  return printed;
}

