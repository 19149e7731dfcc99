// slicehub doctor's checks one by one, against fakes: temp dirs standing in for /sys/fs/cgroup and the sshd
// drop-in, a fake OpenID provider on 127.0.0.1 whose Date header is skewed, certificates made with openssl
// (one about to expire), a fake singleuser script with a dist-info, disk space numbers, SQLite files.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CGROUP2_SUPER_MAGIC,
  checkCertificate,
  checkCgroup,
  checkClock,
  checkConfig,
  checkDatabase,
  checkDisk,
  checkOidc,
  checkPublicUrl,
  checkServiceUser,
  checkSingleuser,
  checkSshd,
  checkSystemd,
  checkUnit,
  parseUnitStates,
  exitStatus,
  fetchDiscovery,
  formatResult,
  MIN_SYSTEMD,
  redirectUri,
  type CheckResult,
} from "../../main/doctor.js";
import { ConfigSchema, type Config } from "../../src/config/schema.js";
import { freePort } from "../../src/ports.js";
import { detectSingleuserVersion } from "../../src/singleuser-version.js";
import { sshdDropIn } from "../../src/ssh/sshd.js";
import { MIGRATIONS } from "../../src/store/migrations.js";

const dir = mkdtempSync(join(tmpdir(), "slicehub-doctor-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cfg = (c: Record<string, unknown> = {}): Config => ConfigSchema.parse(c);
const oidc = (issuer: string, extra: Record<string, unknown> = {}) =>
  cfg({ public_url: "https://hub.example.org", auth: { kind: "oidc", issuer, client_id: "abc" }, spawner: { kind: "local", single_user_host: true }, ...extra });

describe("config", () => {
  it("lists every problem, as check-config does", () => {
    const path = join(dir, "bad.json");
    writeFileSync(path, '{ "lsiten": "http://127.0.0.1:8000", "log_level": "loud" }');
    const r = checkConfig(path);
    expect(r.result).toMatchObject({ id: "config", status: "fail", message: `${path} has 2 problems` });
    expect(r.result.details).toEqual([expect.stringMatching(/^lsiten: unknown key \(did you mean "listen"\?\)/), expect.stringMatching(/^log_level: must be one of/)]);
    expect(r.config).toBeUndefined();
    expect(r.raw).toMatchObject({ log_level: "loud" });
    expect(checkConfig(join(dir, "missing.json")).result).toMatchObject({ status: "fail", message: `${join(dir, "missing.json")}: cannot read: ENOENT no such file`, fix: expect.stringContaining("--config FILE") });
    const good = join(dir, "good.json");
    writeFileSync(good, "// comment\n{ \"log_level\": \"warn\", }");
    expect(checkConfig(good)).toMatchObject({ result: { status: "ok" }, config: { log_level: "warn" } });
  });
});

describe("cgroup and systemd", () => {
  const cgroup2 = () => CGROUP2_SUPER_MAGIC;
  function fakeCgroup(name: string, controllers: string, slice?: string): string {
    const root = join(dir, name);
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, "cgroup.controllers"), `${controllers}\n`);
    if (slice !== undefined) {
      mkdirSync(join(root, "slicehub.slice"));
      writeFileSync(join(root, "slicehub.slice", "cgroup.controllers"), `${slice}\n`);
    }
    return root;
  }

  it("wants cgroup v2 with memory, cpu and pids, and slicehub.slice getting them", () => {
    expect(checkCgroup(fakeCgroup("cg-ok", "cpuset cpu io memory hugetlb pids rdma misc"), "systemd", cgroup2)).toMatchObject({ status: "ok" });
    const noPids = checkCgroup(fakeCgroup("cg-nopids", "cpuset cpu io memory"), "systemd", cgroup2);
    expect(noPids).toMatchObject({ status: "fail", message: expect.stringContaining("lacks the pids controller") });
    expect(noPids.fix).toMatch(/Delegate=yes/);
    expect(checkCgroup(fakeCgroup("cg-slice", "cpu memory pids", "cpu"), "systemd", cgroup2)).toMatchObject({ status: "fail", message: expect.stringContaining("slicehub.slice does not get the memory, pids controllers") });
    expect(checkCgroup(fakeCgroup("cg-slice-ok", "cpu memory pids", "cpu memory pids"), "systemd", cgroup2).message).toContain("slicehub.slice gets them");
  });

  it("says cgroup v1 fails the systemd spawner and only warns the local one", () => {
    const v1 = join(dir, "cg-v1");
    mkdirSync(join(v1, "memory"), { recursive: true });
    expect(checkCgroup(v1, "systemd", () => 0x01021994)).toMatchObject({ status: "fail", message: expect.stringContaining("cgroup v1") });
    expect(checkCgroup(v1, "local", () => 0x01021994)).toMatchObject({ status: "warn" });
    expect(checkCgroup(fakeCgroup("cg-tmpfs", "cpu memory pids"), "systemd", () => 0x01021994).status).toBe("fail");
  });

  it("needs systemd as PID 1 and at least version 247 for the systemd spawner", () => {
    const out = (v: number) => `systemd ${v} (${v}.1-1)\n+PAM +AUDIT default-hierarchy=unified\n`;
    expect(checkSystemd(out(252), true, "systemd")).toMatchObject({ status: "ok", message: expect.stringMatching(/^systemd 252 \(needs 247/) });
    expect(checkSystemd(out(MIN_SYSTEMD - 1), true, "systemd")).toMatchObject({ status: "fail", fix: expect.stringContaining("LoadCredential= (247)") });
    expect(checkSystemd(out(252), false, "systemd")).toMatchObject({ status: "fail", message: expect.stringContaining("not running as the init system") });
    expect(checkSystemd(undefined, false, "systemd").status).toBe("fail");
    expect(checkSystemd(undefined, false, "local").status).toBe("skip");
  });
});

describe("the single-user command", () => {
  let singleuser: string;
  beforeAll(() => {
    const root = join(dir, "venv");
    mkdirSync(join(root, "bin"), { recursive: true });
    writeFileSync(join(root, "bin", "python3"), "#!/bin/sh\nexit 1\n");
    chmodSync(join(root, "bin", "python3"), 0o755);
    const meta = join(root, "lib", "python3.11", "site-packages", "jupyterhub-5.2.1.dist-info");
    mkdirSync(meta, { recursive: true });
    writeFileSync(join(meta, "METADATA"), "Metadata-Version: 2.1\nName: jupyterhub\nVersion: 5.2.1\n");
    singleuser = join(root, "bin", "jupyterhub-singleuser");
    writeFileSync(singleuser, `#!${join(root, "bin", "python3")}\nfrom jupyterhub.singleuser import main\nmain()\n`);
    chmodSync(singleuser, 0o755);
  });

  it("finds it, reads its version, and says the hub reports the same when jupyterhub_version is unset", async () => {
    const [r] = await checkSingleuser(cfg({ spawner: { kind: "local", cmd: [singleuser] } }));
    expect(r).toMatchObject({ status: "ok", message: expect.stringContaining("jupyterhub 5.2.1") });
    expect(r!.message).toContain("the hub reports 5.2.1 (detected)");
  });

  it("warns when jupyterhub_version names another major.minor, and fails a command that is not there", async () => {
    const results = await checkSingleuser(
      cfg({ jupyterhub_version: "3.0.0", spawner: { kind: "local", cmd: [singleuser], profiles: [{ name: "other", title: "Other", cmd: ["no-such-singleuser-xyz"] }] } }),
      (c) => detectSingleuserVersion(c, { path: "/nonexistent", timeoutMs: 1000 }),
    );
    expect(results).toHaveLength(2);
    expect(results[0]).toMatchObject({ status: "warn", message: expect.stringContaining("is jupyterhub 5.2.1 but the hub reports 3.0.0 (jupyterhub_version)") });
    expect(results[0]!.fix).toMatch(/remove jupyterhub_version/);
    expect(results[1]).toMatchObject({ status: "fail", message: "no-such-singleuser-xyz (profile other): not found on PATH" });
  });
});

describe("the OpenID provider and the clock", () => {
  let server: Server;
  let issuer: string;
  let skewMs = 0;
  let mode: "ok" | "wrong-issuer" | "500" | "hang" = "ok";
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (mode === "hang") return; // never answers
      res.sendDate = false;
      res.setHeader("Date", new Date(Date.now() + skewMs).toUTCString());
      if (req.url !== "/.well-known/openid-configuration" || mode === "500") {
        res.writeHead(mode === "500" ? 500 : 404).end();
        return;
      }
      res.setHeader("content-type", "application/json");
      const doc = { issuer: mode === "wrong-issuer" ? `${issuer}/` : issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` };
      res.end(JSON.stringify(doc));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("reads the discovery document and prints the redirect URI to register", async () => {
    mode = "ok";
    skewMs = 0;
    const d = await fetchDiscovery(issuer, 2000);
    expect(d.ok).toBe(true);
    const results = checkOidc(oidc(issuer), d);
    expect(results.map((r) => [r.id, r.status])).toEqual([["oidc", "ok"], ["redirect-uri", "ok"]]);
    expect(results[1]!.message).toBe("https://hub.example.org/hub/oauth_callback — register exactly this as an authorized redirect URI in your provider's console (client abc)");
    expect(redirectUri(cfg())).toBe("http://127.0.0.1:8000/hub/oauth_callback");
    expect(checkClock(d.date, d.receivedAt, "the provider")).toMatchObject({ status: "ok" });
  });

  it("warns about a clock 2 minutes off and fails one 10 minutes off", async () => {
    mode = "ok";
    skewMs = 120_000;
    let d = await fetchDiscovery(issuer, 2000);
    expect(checkClock(d.date, d.receivedAt, "p")).toMatchObject({ status: "warn", message: expect.stringMatching(/^this host's clock is 1(19|20|21) s behind p$/) });
    skewMs = -600_000;
    d = await fetchDiscovery(issuer, 2000);
    expect(checkClock(d.date, d.receivedAt, "p")).toMatchObject({ status: "fail", message: expect.stringMatching(/ s ahead of p$/) });
    expect(checkClock(undefined, undefined, "p").status).toBe("skip");
  });

  it("fails an issuer that names itself differently, answers 500, is not there, or does not answer in time", async () => {
    mode = "wrong-issuer";
    const wrong = checkOidc(oidc(issuer), await fetchDiscovery(issuer, 2000));
    expect(wrong[0]).toMatchObject({ status: "fail", message: expect.stringContaining(`it names issuer "${issuer}/"`) });
    expect(wrong[1]!.id).toBe("redirect-uri");
    mode = "500";
    expect(checkOidc(oidc(issuer), await fetchDiscovery(issuer, 2000))[0]).toMatchObject({ status: "fail", message: expect.stringContaining("HTTP 500") });
    mode = "hang";
    const t0 = Date.now();
    const hung = await fetchDiscovery(issuer, 500);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(hung).toMatchObject({ ok: false, error: "no answer within 0.5 s" });
    const closed = await fetchDiscovery(`http://127.0.0.1:${await freePort()}`, 2000);
    expect(closed).toMatchObject({ ok: false, error: "ECONNREFUSED" });
  });

  it("warns that an http redirect URI is refused by providers unless it is loopback", async () => {
    mode = "ok";
    const d = await fetchDiscovery(issuer, 2000);
    const plain = checkOidc(oidc(issuer, { public_url: "http://hub.example.org" }), d);
    expect(plain[1]).toMatchObject({ id: "redirect-uri", status: "warn" });
    expect(checkOidc(cfg(), d)).toEqual([{ id: "oidc", status: "skip", message: "no OpenID provider (dev login)" }]);
  });
});

describe("public_url", () => {
  const c = cfg({ public_url: "https://hub.example.org", auth: { kind: "oidc", client_id: "x" }, spawner: { kind: "systemd" } });
  it("is OK when its host resolves to an address of this host, a WARN when not (NAT, proxy), a FAIL when it does not resolve", async () => {
    expect(await checkPublicUrl(c, async () => ["192.0.2.7", "2001:db8::7"], ["127.0.0.1", "192.0.2.7"])).toMatchObject({ status: "ok", message: "hub.example.org resolves to 192.0.2.7, an address of this host" });
    const elsewhere = await checkPublicUrl(c, async () => ["203.0.113.5"], ["127.0.0.1", "192.0.2.7"]);
    expect(elsewhere).toMatchObject({ status: "warn", fix: expect.stringContaining("NAT") });
    const missing = await checkPublicUrl(c, async () => Promise.reject(Object.assign(new Error("nope"), { code: "ENOTFOUND" })), []);
    expect(missing).toMatchObject({ status: "fail", message: "hub.example.org (public_url) does not resolve: ENOTFOUND" });
    expect((await checkPublicUrl(cfg(), async () => [], [])).status).toBe("ok");
    const any = cfg({ listen: "http://0.0.0.0:8000", auth: { kind: "oidc", client_id: "x" }, spawner: { kind: "systemd" } });
    expect(await checkPublicUrl(any, async () => [], [])).toMatchObject({ status: "warn", fix: expect.stringContaining("set public_url") });
  });
});

describe("the certificate", () => {
  function makeCert(name: string, days: number, cn = "hub.example.org"): string {
    const cert = join(dir, `${name}.pem`);
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(dir, `${name}.key`), "-out", cert, "-days", String(days), "-subj", `/CN=${cn}`, "-addext", `subjectAltName=DNS:${cn}`], { stdio: "ignore" });
    return cert;
  }

  it("is OK far from expiry, a WARN under 21 days, a FAIL once expired or unreadable", () => {
    const long = makeCert("long", 90);
    const soon = makeCert("soon", 5);
    const now = Date.now();
    expect(checkCertificate("https://0.0.0.0:443", long, "hub.example.org", now, true)).toMatchObject({ status: "ok", message: expect.stringMatching(/is valid for 8\d more days/) });
    expect(checkCertificate("https://0.0.0.0:443", soon, "hub.example.org", now, true)).toMatchObject({ status: "warn", message: expect.stringMatching(/expires in [45]\.\d days/) });
    expect(checkCertificate("https://0.0.0.0:443", soon, "hub.example.org", now + 6 * 86_400_000, true)).toMatchObject({ status: "fail", message: expect.stringContaining("expired on") });
    expect(checkCertificate("https://0.0.0.0:443", join(dir, "none.pem"), "hub.example.org", now, true)).toMatchObject({ status: "fail", message: expect.stringContaining("ENOENT") });
    writeFileSync(join(dir, "junk.pem"), "not a certificate\n");
    expect(checkCertificate("https://0.0.0.0:443", join(dir, "junk.pem"), "hub.example.org", now, true).status).toBe("fail");
    expect(checkCertificate("https://0.0.0.0:443", undefined, "hub.example.org", now, true).status).toBe("fail");
  });

  it("warns when the certificate does not name public_url's host, and skips plain-http listeners", () => {
    const other = makeCert("other", 90, "other.example.org");
    expect(checkCertificate("https://0.0.0.0:443", other, "hub.example.org", Date.now(), true)).toMatchObject({ status: "warn", message: expect.stringContaining("does not name hub.example.org") });
    expect(checkCertificate("http://127.0.0.1:8000", other, "hub.example.org", Date.now(), true).status).toBe("skip");
  });
});

describe("disk", () => {
  const GiB = 2 ** 30;
  it("warns under 10 % or 1 GiB free and fails under 2 %", () => {
    const at = (free: number, total: number) => () => ({ free, total });
    expect(checkDisk("disk-state", "state_dir", dir, at(50 * GiB, 100 * GiB)).status).toBe("ok");
    expect(checkDisk("disk-state", "state_dir", dir, at(5 * GiB, 100 * GiB)).status).toBe("warn");
    expect(checkDisk("disk-state", "state_dir", dir, at(0.5 * GiB, 2 * GiB)).status).toBe("warn");
    expect(checkDisk("disk-homes", "homes", dir, at(1 * GiB, 100 * GiB))).toMatchObject({ status: "fail", message: `1.0 GiB (1 %) free in ${dir} (homes)` });
  });

  it("looks at the nearest existing parent of a directory not made yet, on the real file system", () => {
    const r = checkDisk("disk-state", "state_dir", join(dir, "not", "yet"));
    expect(r.message).toContain(`free in ${dir} (state_dir)`);
  });
});

describe("sshd drop-in", () => {
  const c = cfg({ spawner: { kind: "systemd" }, ssh: { enabled: true } });
  const dropIn = join(dir, "slicehub.conf");
  const base = { dropIn, sshd: process.execPath, exclude: async () => ["jupyter-bob"] };
  const want = () => sshdDropIn({ prefix: "jupyter-", serviceUser: "slicehub", enabled: true, exclude: ["jupyter-bob"] });

  it("fails when missing, warns when it differs from what install writes now", async () => {
    rmSync(dropIn, { force: true });
    expect(await checkSshd(c, { ...base, isRoot: true })).toMatchObject({ status: "fail", fix: expect.stringContaining("slicehub install") });
    writeFileSync(dropIn, sshdDropIn({ prefix: "jupyter-", serviceUser: "slicehub", enabled: true }));
    expect(await checkSshd(c, { ...base, isRoot: true })).toMatchObject({ status: "warn", message: expect.stringContaining("differs from what slicehub install writes") });
  });

  it("says what it could not check without root; as root runs sshd -t and -T", async () => {
    writeFileSync(dropIn, want());
    expect(await checkSshd(c, { ...base, isRoot: false })).toMatchObject({ status: "warn", message: expect.stringContaining("sshd -t and sshd -T were not run") });
    expect(await checkSshd(c, { ...base, isRoot: true, sshdTest: async () => undefined, missing: () => [] })).toMatchObject({ status: "ok" });
    expect(await checkSshd(c, { ...base, isRoot: true, sshdTest: async () => "/etc/ssh/sshd_config line 3: Bad configuration option: Bogus", missing: () => [] })).toMatchObject({ status: "fail", message: expect.stringContaining("Bogus") });
    expect(await checkSshd(c, { ...base, isRoot: true, sshdTest: async () => undefined, missing: () => ["authorizedkeysfile none"] })).toMatchObject({ status: "fail", fix: expect.stringContaining("Include") });
  });

  it("skips when SSH is off", async () => {
    expect((await checkSshd(cfg(), { ...base, isRoot: true })).status).toBe("skip");
  });
});

describe("the service", () => {
  it("wants run_as to exist and not be root", async () => {
    const c = cfg({ spawner: { kind: "systemd" } });
    expect(await checkServiceUser(c, async () => ({ uid: 998 }))).toMatchObject({ status: "ok", message: "slicehub exists (uid 998)" });
    expect((await checkServiceUser(c, async () => undefined)).status).toBe("fail");
    expect((await checkServiceUser(c, async () => ({ uid: 0 }))).status).toBe("fail");
    expect((await checkServiceUser(cfg(), async () => undefined)).status).toBe("skip");
  });

  it("reads the unit's state", () => {
    const states = parseUnitStates("LoadState=loaded\nActiveState=active\n\nLoadState=not-found\nActiveState=inactive\n");
    expect(states).toEqual([{ load: "loaded", active: "active" }, { load: "not-found", active: "inactive" }]);
    expect(checkUnit("slicehub.service", states[0], "systemd")).toMatchObject({ id: "unit", status: "ok" });
    expect(checkUnit("slicehub-helper.service", states[1], "systemd")).toMatchObject({ id: "helper-unit", status: "skip" });
    expect(checkUnit("slicehub-helper.service", { load: "loaded", active: "failed" }, "systemd")).toMatchObject({ status: "fail", fix: expect.stringContaining("journalctl -u slicehub-helper.service") });
    expect(checkUnit("slicehub.service", { load: "not-found", active: "inactive" }, "systemd")).toMatchObject({ status: "warn", fix: expect.stringContaining("slicehub install") });
    expect(checkUnit("slicehub.service", { load: "loaded", active: "inactive" }, "systemd").status).toBe("warn");
    expect(checkUnit("slicehub.service", { load: "loaded", active: "inactive" }, "local").status).toBe("skip");
    expect(checkUnit("slicehub.service", undefined, "systemd").status).toBe("skip");
  });

  it("opens the database read-only and compares its schema with this slicehub's", () => {
    const state = join(dir, "state-db");
    mkdirSync(state);
    expect(checkDatabase(state)).toMatchObject({ status: "ok", message: expect.stringContaining("does not exist yet") });
    const make = (v: number) => {
      const db = new Database(join(state, "slicehub.sqlite"));
      db.pragma(`user_version = ${v}`);
      db.close();
    };
    make(MIGRATIONS.length);
    expect(checkDatabase(state)).toMatchObject({ status: "ok", message: expect.stringContaining(`schema ${MIGRATIONS.length} is current`) });
    make(MIGRATIONS.length - 1);
    expect(checkDatabase(state).status).toBe("warn");
    make(MIGRATIONS.length + 1);
    expect(checkDatabase(state).status).toBe("fail");
    writeFileSync(join(state, "slicehub.sqlite"), "this is not a database, just text that is long enough ".repeat(20));
    expect(checkDatabase(state).status).toBe("fail");
  });
});

describe("output", () => {
  const r = (status: CheckResult["status"]): CheckResult => ({ id: "x", status, message: "m", ...(status === "warn" || status === "fail" ? { fix: "f" } : {}) });
  it("exits 0 when all is well, 1 on any FAIL, 3 on WARNs only", () => {
    expect(exitStatus([r("ok"), r("skip")])).toBe(0);
    expect(exitStatus([r("ok"), r("warn")])).toBe(3);
    expect(exitStatus([r("warn"), r("fail")])).toBe(1);
  });
  it("prints one line per check with its fix, colour only when asked", () => {
    expect(formatResult({ id: "disk-state", status: "warn", message: "low", fix: "free some" }, false)).toBe("WARN disk-state   low — fix: free some");
    expect(formatResult({ id: "config", status: "fail", message: "bad", fix: "f", details: ["a: b"] }, false)).toBe(`FAIL config       bad — fix: f\n${" ".repeat(18)}a: b`);
    expect(formatResult(r("ok"), true)).toMatch(/^\x1b\[32mOK/);
  });
});
