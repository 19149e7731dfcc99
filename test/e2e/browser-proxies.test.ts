// slicehub behind the real reverse proxies docs/https.md configures: Debian's nginx and Caddy terminate TLS
// (an openssl-made certificate) and forward to slicehub on loopback, trusted through trusted_proxies. Checked:
// what a user's server is told (the client's address as the proxy saw it, https, the Host; a client's forged
// X-Forwarded-For never reaches it), HSTS once, and in Chromium a notebook whose kernel websocket goes wss://
// through each proxy to the real jupyterhub-singleuser. Screenshots: test-artifacts/proxy-*.png.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser as Chromium } from "playwright-core";
import { freePort } from "../../src/ports.js";
import { ARTIFACTS, haveChromium, launchChromium, printInNewNotebook } from "./chromium.js";
import { Browser, HubProcess, rawRequest, SINGLEUSER } from "./harness.js";
import { haveOpenssl, TestCa } from "./tls-certs.js";

const NGINX = "/usr/sbin/nginx";
const CADDY = "/usr/bin/caddy";
const isRoot = process.getuid?.() === 0;
const missing = [
  [haveChromium, "chromium"],
  [existsSync(SINGLEUSER), SINGLEUSER],
  [haveOpenssl, "openssl"],
  [existsSync(NGINX), "nginx"],
  [existsSync(CADDY), "caddy"],
].filter(([ok]) => !ok).map(([, what]) => what);

// A stand-in user server that answers every GET with the request headers it got, as JSON.
const ECHO_SERVER = `
import json, os, http.server, urllib.parse
u = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((u.hostname, u.port), H).serve_forever()
`;

/** nginx as docs/https.md has it (ports and files of this test; no port 80 server). */
function nginxConf(dir: string, port: number, hubPort: number, cert: string, key: string): string {
  return `${isRoot ? "user root;\n" : ""}worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;

    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }

    server {
        listen 127.0.0.1:${port} ssl;
        server_name localhost;

        ssl_certificate     ${cert};
        ssl_certificate_key ${key};
        ssl_protocols       TLSv1.2 TLSv1.3;

        client_max_body_size 0;

        location / {
            proxy_pass http://127.0.0.1:${hubPort};
            proxy_http_version 1.1;
            proxy_set_header Host              $http_host;
            proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host  $http_host;
            proxy_set_header Upgrade           $http_upgrade;
            proxy_set_header Connection        $connection_upgrade;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
        }
    }
}
`;
}

/** Caddy as docs/https.md has it, with this test's certificate instead of one from Let's Encrypt. */
function caddyfile(port: number, hubPort: number, cert: string, key: string): string {
  return `{
	admin off
	auto_https off
}

https://localhost:${port} {
	tls ${cert} ${key}
	reverse_proxy 127.0.0.1:${hubPort}
}
`;
}

/** A GET through a proxy from 127.0.0.3 (not a trusted proxy), trusting the test CA. */
const get = (url: string, ca: string, headers: Record<string, string> = {}) => rawRequest(url, { ca, headers, localAddress: "127.0.0.3" });

describe.skipIf(missing.length > 0)("behind nginx and Caddy", () => {
  let dir: string;
  let ca: TestCa;
  let hub: HubProcess;
  let chromium: Chromium;
  let spki: string;
  const procs: ChildProcess[] = [];
  const proxies: { name: string; url: string }[] = [];
  let output = "";

  async function waitFor(url: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if ((await get(`${url}/hub/api`, ca.pem).then((r) => r.status, () => 0)) === 200) return;
      await sleep(100);
    }
    throw new Error(`${url} did not answer:\n${output}`);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-proxies-"));
    ca = TestCa.create(join(dir, "ca"));
    const leaf = ca.leaf("proxy", "5001");
    spki = leaf.spki;
    writeFileSync(join(dir, "echo.py"), ECHO_SERVER);
    const nginxPort = await freePort();
    const caddyPort = await freePort();
    hub = await HubProcess.start({
      config: {
        // The proxies run on this host: believe them, nobody else. Sessions are __Host-/Secure (public_url https).
        public_url: `https://localhost:${nginxPort}`,
        trusted_proxies: ["127.0.0.1", "::1"],
        spawner: { profiles: [{ name: "notebook", title: "Notebook" }, { name: "echo", title: "Echo", cmd: ["/usr/bin/python3", join(dir, "echo.py")], args: [] }] },
      },
    });

    const ngx = join(dir, "nginx");
    for (const d of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(ngx, d), { recursive: true });
    writeFileSync(join(ngx, "nginx.conf"), nginxConf(ngx, nginxPort, hub.port, leaf.cert, leaf.key));
    const cad = join(dir, "caddy");
    mkdirSync(cad, { recursive: true });
    writeFileSync(join(cad, "Caddyfile"), caddyfile(caddyPort, hub.port, leaf.cert, leaf.key));
    const start = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
      const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
      p.stdout!.on("data", (d: Buffer) => (output += d.toString()));
      p.stderr!.on("data", (d: Buffer) => (output += d.toString()));
      procs.push(p);
    };
    start(NGINX, ["-p", ngx, "-c", join(ngx, "nginx.conf"), "-g", "daemon off;"]);
    start(CADDY, ["run", "--config", join(cad, "Caddyfile"), "--adapter", "caddyfile"], { HOME: cad, XDG_DATA_HOME: join(cad, "data"), XDG_CONFIG_HOME: join(cad, "config") });
    proxies.push({ name: "nginx", url: `https://localhost:${nginxPort}` }, { name: "caddy", url: `https://localhost:${caddyPort}` });
    for (const p of proxies) await waitFor(p.url);
    chromium = await launchChromium([`--ignore-certificate-errors-spki-list=${spki}`]);
  }, 90_000);

  afterAll(async () => {
    await chromium?.close();
    for (const p of procs) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      await Promise.race([exited, sleep(5_000)]);
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    }
    await hub?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("a user's server is told the client the proxy saw, https and the Host; a forged X-Forwarded-For stops at the proxy", async () => {
    const ada = new Browser(hub.url);
    await ada.login("ada");
    const csrf = /name="_xsrf" value="([^"]+)"/.exec(await (await ada.request("/hub/home")).text())?.[1] ?? "";
    const started = await ada.request("/hub/api/users/ada/server", { method: "POST", headers: { "content-type": "application/json", "x-xsrftoken": csrf }, body: JSON.stringify({ profile: "echo" }) });
    expect([201, 202]).toContain(started.status);
    for (const p of proxies) {
      let seen: Record<string, string> | undefined;
      for (let i = 0; i < 100 && !seen; i++) {
        const r = await get(`${p.url}/user/ada/x`, ca.pem, { "X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6", Forwarded: "for=6.6.6.6;proto=http" });
        if (r.status === 200 && r.body.startsWith("{")) {
          seen = JSON.parse(r.body) as Record<string, string>;
          expect(r.headers["strict-transport-security"], p.name).toBe("max-age=31536000");
        } else await sleep(200);
      }
      expect(seen, p.name).toBeDefined();
      const port = new URL(p.url).port;
      expect(seen!["x-forwarded-for"], p.name).toBe("127.0.0.3,127.0.0.1");
      expect(seen!["x-real-ip"], p.name).toBe("127.0.0.3");
      expect(seen!["x-forwarded-proto"], p.name).toBe("https");
      expect(seen!["x-forwarded-host"], p.name).toBe(`localhost:${port}`);
      expect(seen!["x-forwarded-port"], p.name).toBe(port);
      expect(seen!.host, p.name).toBe(`localhost:${port}`);
      expect(seen!.forwarded, p.name).toBeUndefined();
    }
  }, 90_000);

  it("Chromium through each proxy: home, a started server, a notebook cell over wss", async () => {
    // Dev login refuses proxied requests (it has no password): log in on the hub's own listener and hand the
    // session to the browser, as if it had logged in with OIDC through the proxy.
    const bea = new Browser(hub.url);
    await bea.login("bea");
    const session = bea.cookie("__Host-slicehub-session");
    expect(session).toBeDefined();
    const context = await chromium.newContext({ viewport: { width: 1100, height: 800 } });
    try {
      for (const p of proxies) await context.addCookies([{ name: "__Host-slicehub-session", value: session!, url: p.url, secure: true, httpOnly: true, sameSite: "Lax" }]);
      const page = await context.newPage();
      const sockets: string[] = [];
      page.on("websocket", (ws) => sockets.push(ws.url()));
      for (const [i, p] of proxies.entries()) {
        await page.goto(`${p.url}/hub/home`);
        await expect.poll(() => page.textContent("main")).toContain("My servers");
        if (i === 0) {
          await page.screenshot({ path: join(ARTIFACTS, `proxy-${p.name}-home.png`), fullPage: true });
          await page.click("text=Start");
          await page.waitForURL(/\/user\/bea\/tree/, { timeout: 90_000 });
        } else {
          await page.goto(`${p.url}/user/bea/tree`);
        }
        await page.waitForSelector("#notebook_list", { timeout: 30_000 });
        expect(await printInNewNotebook(page, "/user/bea/"), p.name).toBe("42");
        await page.screenshot({ path: join(ARTIFACTS, `proxy-${p.name}-notebook.png`), fullPage: true });
        const port = new URL(p.url).port;
        expect(sockets.some((u) => u.startsWith(`wss://localhost:${port}/user/bea/api/kernels/`)), `${p.name}: ${sockets.join(" ")}`).toBe(true);
      }
    } finally {
      await context.close();
    }
  }, 240_000);
});
