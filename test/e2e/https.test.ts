// The https listener end to end (config `tls`), with certificates made by the real openssl: TLS versions and
// ALPN, the certificate rotated under the running hub the way certbot renews (symlinks swapped), broken
// replacements that keep the old one, the redirect listener, HSTS, Secure/__Host- cookies over it, the
// servers' plain loopback API listener, and forged X-Forwarded-* from a client that is no trusted proxy.
import tls from "node:tls";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { HubProcess, rawRequest } from "./harness.js";
import { haveOpenssl, LiveDir, TestCa } from "./tls-certs.js";

/** One request; https ones trust only the test CA. */
const request = rawRequest;

/** The TLS session a client gets: protocol, ALPN and the served certificate's serial. */
function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<{ protocol: string | null; alpn: string | false | null; serial: string; fingerprint256: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", timeout: 10_000, ...opts });
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate();
      resolve({ protocol: socket.getProtocol(), alpn: socket.alpnProtocol, serial: cert.serialNumber, fingerprint256: cert.fingerprint256 });
      socket.destroy();
    });
    socket.once("timeout", () => socket.destroy(new Error("timeout")));
    socket.once("error", reject);
  });
}

describe.skipIf(!haveOpenssl)("https listener", () => {
  let dir: string;
  let ca: TestCa;
  let live: LiveDir;
  let hub: HubProcess;
  let port: number;
  let redirectPort: number;
  let internalPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-https-"));
    ca = TestCa.create(join(dir, "ca"));
    live = new LiveDir(join(dir, "letsencrypt"));
    live.install(ca.leaf("first", "1001"));
    // certbot --webroot writes its HTTP-01 tokens here.
    mkdirSync(join(dir, "webroot", ".well-known", "acme-challenge"), { recursive: true });
    writeFileSync(join(dir, "webroot", ".well-known", "acme-challenge", "tok_en-1"), "tok_en-1.thumbprint");
    writeFileSync(join(dir, "webroot", "secret.txt"), "not to be served");
    redirectPort = await freePort();
    internalPort = await freePort();
    hub = await HubProcess.start({
      config: {
        tls: {
          cert_file: live.fullchain,
          key_file: live.privkey,
          reload_check_s: 1,
          redirect_http: `http://127.0.0.1:${redirectPort}`,
          internal_listen: `http://127.0.0.1:${internalPort}`,
          acme_webroot: join(dir, "webroot"),
        },
      },
    });
    port = hub.port;
  }, 60_000);
  afterAll(async () => {
    await hub?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("serves the openssl certificate over TLS 1.3, ALPN http/1.1 (never h2); TLS 1.2 still works, TLS 1.1 is refused by the server", async () => {
    const s = await handshake(port, { ca: ca.pem, ALPNProtocols: ["h2", "http/1.1"] });
    expect(s).toMatchObject({ protocol: "TLSv1.3", alpn: "http/1.1", serial: "1001" });
    expect((await handshake(port, { ca: ca.pem, maxVersion: "TLSv1.2" })).protocol).toBe("TLSv1.2");
    // The client offers TLS 1.0/1.1 only (and lowers its own security level so that it may): the server answers
    // with the protocol_version alert (70).
    const old = await handshake(port, { ca: ca.pem, minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" }).catch((e: NodeJS.ErrnoException) => e);
    expect(old).toBeInstanceOf(Error);
    expect((old as NodeJS.ErrnoException).code).toBe("ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION");
    // A client that trusts another CA refuses it (the chain is the test CA's, nothing else).
    const other = TestCa.create(join(dir, "other-ca"));
    await expect(handshake(port, { ca: other.pem })).rejects.toThrow(/certificate/);
  });

  it("sends HSTS; the session cookie is __Host-, Secure; forged X-Forwarded-* from a non-proxy change nothing", async () => {
    const base = `https://127.0.0.1:${port}`;
    const page = await request(`${base}/hub/login`, { ca: ca.pem });
    expect(page.status).toBe(200);
    expect(page.headers["strict-transport-security"]).toBe("max-age=31536000");
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page.body)![1]!;
    const jar = (page.headers["set-cookie"] ?? []).map((c) => c.split(";")[0]).join("; ");
    const login = await request(`${base}/hub/login`, {
      ca: ca.pem,
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: jar },
      body: new URLSearchParams({ username: "ada", _xsrf: xsrf }).toString(),
    });
    expect(login.status).toBe(302);
    const session = (login.headers["set-cookie"] ?? []).find((c) => c.startsWith("__Host-slicehub-session="));
    expect(session).toMatch(/; Path=\/; .*Secure/);
    expect(session).toMatch(/HttpOnly/);
    await hub.waitForLog(/user logged in.*"user":"ada".*"client":"127\.0\.0\.1"/);
    // A client (127.0.0.1 is not in trusted_proxies, which is empty) claiming plain http on another host: the
    // redirect stays a path on this host, HSTS stays, and the session cookie is still the __Host- one.
    const cookie = `${session!.split(";")[0]}`;
    const spoofed = await request(`${base}/hub/`, {
      ca: ca.pem,
      headers: { Cookie: cookie, "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example", Forwarded: "proto=http;host=evil.example", "X-Forwarded-For": "10.6.6.6" },
    });
    expect(spoofed.status).toBe(302);
    expect(spoofed.headers.location).toBe("/hub/home");
    expect(spoofed.headers["strict-transport-security"]).toBe("max-age=31536000");
    const home = await request(`${base}/hub/home`, { ca: ca.pem, headers: { Cookie: cookie, "X-Forwarded-Proto": "http" } });
    expect(home.status).toBe(200);
    expect(home.body).toContain("ada");
  });

  it("the redirect listener only redirects, to the https address, whatever Host or path it is sent", async () => {
    const to = `https://127.0.0.1:${port}`;
    const r = await request(`http://127.0.0.1:${redirectPort}/hub/home?next=%2Fhub%2Ftoken`);
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe(`${to}/hub/home?next=%2Fhub%2Ftoken`);
    expect(r.headers["strict-transport-security"]).toBeUndefined();
    expect(r.headers["set-cookie"]).toBeUndefined();
    for (const path of ["//evil.example/x", "/\\evil.example/x", "/hub/api/users"]) {
      const x = await request(`http://127.0.0.1:${redirectPort}${path}`, { headers: { Host: "evil.example", "X-Forwarded-Host": "evil.example" } });
      expect(x.status, path).toBe(308);
      expect(new URL(x.headers.location!).origin, path).toBe(to);
    }
    const post = await request(`http://127.0.0.1:${redirectPort}/hub/login`, { method: "POST", body: "username=ada" });
    expect(post.status).toBe(308);
  });

  it("the redirect listener answers ACME HTTP-01 challenges from tls.acme_webroot, and nothing else of it", async () => {
    const token = await request(`http://127.0.0.1:${redirectPort}/.well-known/acme-challenge/tok_en-1`);
    expect(token.status).toBe(200);
    expect(token.body).toBe("tok_en-1.thumbprint");
    for (const path of ["/.well-known/acme-challenge/missing", "/.well-known/acme-challenge/..%2f..%2fsecret.txt", "/.well-known/acme-challenge/../../secret.txt", "/secret.txt", "/.well-known/acme-challenge/"]) {
      const r = await request(`http://127.0.0.1:${redirectPort}${path}`);
      expect(r.status, path).toBe(308);
      expect(r.body, path).not.toContain("not to be served");
    }
  });

  it("servers reach the API on the plain loopback listener, which answers nothing else", async () => {
    const api = await request(`http://127.0.0.1:${internalPort}/hub/api`);
    expect(api.status).toBe(200);
    expect(JSON.parse(api.body)).toHaveProperty("version");
    expect((await request(`http://127.0.0.1:${internalPort}/hub/login`)).status).toBe(404);
    expect((await request(`http://127.0.0.1:${internalPort}/user/ada/`)).status).toBe(404);
    // Plain HTTP to the https port is not served.
    await expect(request(`http://127.0.0.1:${port}/hub/api`)).rejects.toThrow();
  });

  /** Polls new handshakes (bounded) until `serial` is served. */
  async function servedSerial(serial: string): Promise<string> {
    let last = "";
    for (let i = 0; i < 40 && last !== serial; i++) {
      last = (await handshake(port, { ca: ca.pem })).serial;
      if (last !== serial) await sleep(250);
    }
    return last;
  }

  it("serves a renewed certificate without a restart; broken replacements keep the current one", async () => {
    const pid = hub.proc!.pid;
    // A renewal as certbot does it: new archive files, symlinks swapped.
    const second = ca.leaf("second", "1002");
    live.install(second);
    expect(await servedSerial("1002")).toBe("1002");
    expect((await handshake(port, { ca: ca.pem })).fingerprint256).toBe(second.fingerprint256);
    await hub.waitForLog(/serving a new TLS certificate.*"serial":"1002"/);
    expect(hub.proc!.pid).toBe(pid);
    expect(hub.proc!.exitCode).toBeNull();

    // The key of another certificate (a renewal half done, or a wrong file): logged, 1002 stays.
    live.install(ca.leaf("third", "1003"), "key");
    await hub.waitForLog(/does not work; still serving the current one.*is not the key of the certificate/);
    // Garbage instead of a certificate.
    live.installBroken("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    await hub.waitForLog(/does not work; still serving the current one.*holds no PEM certificate/);
    // An expired certificate (notAfter = now), with its own key.
    const expired = ca.leaf("expired", "1004", 0);
    await sleep(1_100);
    live.install(expired);
    await hub.waitForLog(/does not work; still serving the current one.*expired/);
    // The key file gone.
    rmSync(live.privkey);
    await hub.waitForLog(/cannot read the TLS certificate or key; still serving the current one/);
    expect((await handshake(port, { ca: ca.pem })).serial).toBe("1002");
    expect((await request(`https://127.0.0.1:${port}/hub/api`, { ca: ca.pem })).status).toBe(200);

    // A good pair again is taken, with the listener's settings unchanged (versions, ALPN).
    live.install(ca.leaf("fifth", "1005"));
    expect(await servedSerial("1005")).toBe("1005");
    expect(hub.proc!.pid).toBe(pid);
    expect(await handshake(port, { ca: ca.pem, ALPNProtocols: ["h2", "http/1.1"] })).toMatchObject({ protocol: "TLSv1.3", alpn: "http/1.1" });
    const old = await handshake(port, { ca: ca.pem, minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" }).catch((e: NodeJS.ErrnoException) => e);
    expect((old as NodeJS.ErrnoException).code).toBe("ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION");
  }, 60_000);
});

describe.skipIf(!haveOpenssl)("https listener: start-up", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-https-start-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses to start with a key that is not the certificate's, or a missing file, saying which", async () => {
    const ca = TestCa.create(join(dir, "ca"));
    const a = ca.leaf("a", "2001");
    const b = ca.leaf("b", "2002");
    for (const [tlsFiles, message] of [
      [{ cert_file: a.cert, key_file: b.key }, /does not work: the key is not the key of the certificate/],
      [{ cert_file: a.cert, key_file: join(dir, "missing.key") }, /cannot read the TLS certificate or key: ENOENT.*missing\.key/],
    ] as const) {
      const started = HubProcess.start({ config: { tls: tlsFiles } }).then(
        async (h) => {
          await h.destroy();
          return "started";
        },
        (e: Error) => e.message,
      );
      expect(await started).toMatch(message);
    }
  });
});
