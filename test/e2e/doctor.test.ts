// `node dist/slicehub.js doctor --config …` as a child process: its lines, its --json, its exit status, against
// a fake singleuser (a script with a dist-info) and a fake OpenID provider on 127.0.0.1 whose clock is off.
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, HubProcess } from "./harness.js";

const dir = mkdtempSync(join(tmpdir(), "slicehub-doctor-e2e-"));
let issuer: string;
let server: Server;
let singleuser: string;

function doctor(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, "doctor", ...args], { cwd: dir, timeout: 30_000, env: { ...process.env, NO_COLOR: "1" } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

function config(name: string, c: Record<string, unknown>): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ listen: "http://127.0.0.1:8000", state_dir: "./state", ...c }, null, 2));
  return path;
}

/** The check lines: "<STATUS> <id> …", status and id. */
function lines(stdout: string): { status: string; id: string; line: string }[] {
  return stdout
    .split("\n")
    .map((line) => /^(OK|WARN|FAIL|--)\s+(\S+)\s/.exec(line) && { line, ...(/^(?<status>OK|WARN|FAIL|--)\s+(?<id>\S+)/.exec(line)!.groups as { status: string; id: string }) })
    .filter((l): l is { status: string; id: string; line: string } => !!l);
}

/** What the exit status must be, given the printed lines. */
const expectedExit = (ls: { status: string }[]) => (ls.some((l) => l.status === "FAIL") ? 1 : ls.some((l) => l.status === "WARN") ? 3 : 0);

beforeAll(async () => {
  const venv = join(dir, "venv");
  mkdirSync(join(venv, "bin"), { recursive: true });
  writeFileSync(join(venv, "bin", "python3"), "#!/bin/sh\nexit 1\n");
  chmodSync(join(venv, "bin", "python3"), 0o755);
  mkdirSync(join(venv, "lib", "python3.11", "site-packages", "jupyterhub-5.2.1.dist-info"), { recursive: true });
  writeFileSync(join(venv, "lib", "python3.11", "site-packages", "jupyterhub-5.2.1.dist-info", "METADATA"), "Name: jupyterhub\nVersion: 5.2.1\n");
  singleuser = join(venv, "bin", "jupyterhub-singleuser");
  writeFileSync(singleuser, `#!${join(venv, "bin", "python3")}\n`);
  chmodSync(singleuser, 0o755);

  server = createServer((req, res) => {
    res.sendDate = false;
    res.setHeader("Date", new Date(Date.now() - 120_000).toUTCString()); // the provider is 2 minutes behind
    if (req.url !== "/.well-known/openid-configuration") return void res.writeHead(404).end();
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe("slicehub doctor", () => {
  it("prints one line per check, the singleuser's version as the reported one, and exits by the worst status", async () => {
    const path = config("dev.json", { spawner: { kind: "local", cmd: [singleuser] } });
    const r = await doctor(["--config", path]);
    const ls = lines(r.stdout);
    // helper-unit only where systemd runs (PID 1).
    expect(ls.map((l) => l.id).filter((id) => id !== "helper-unit")).toEqual(["config", "cgroup", "systemd", "singleuser", "oidc", "clock", "public-url", "certificate", "disk-state", "sshd", "service-user", "unit", "database"]);
    expect(ls.find((l) => l.id === "config")!.status).toBe("OK");
    expect(ls.find((l) => l.id === "singleuser")!.line).toContain(`${singleuser} (spawner.cmd): jupyterhub 5.2.1`);
    expect(ls.find((l) => l.id === "singleuser")!.line).toContain("the hub reports 5.2.1 (detected)");
    for (const l of ls) if (l.status === "WARN" || l.status === "FAIL") expect(l.line).toContain(" — fix: ");
    expect(r.stdout).not.toContain("\x1b[");
    expect(r.stdout).toMatch(/\n\d+ OK, \d+ WARN, \d+ FAIL, \d+ skipped: /);
    expect(r.code).toBe(expectedExit(ls));
  });

  it("checks the OpenID provider: the redirect URI to register, and a clock 2 minutes off is a WARN", async () => {
    const path = config("oidc.json", {
      public_url: "http://127.0.0.1:8000",
      auth: { kind: "oidc", issuer, client_id: "doctor-test", client_secret_file: "/nonexistent" },
      spawner: { kind: "local", cmd: [singleuser], single_user_host: true },
    });
    const r = await doctor(["--config", path, "--timeout", "3"]);
    const ls = lines(r.stdout);
    expect(ls.find((l) => l.id === "oidc")).toMatchObject({ status: "OK" });
    expect(ls.find((l) => l.id === "redirect-uri")!.line).toContain("http://127.0.0.1:8000/hub/oauth_callback — register exactly this");
    expect(ls.find((l) => l.id === "clock")!.line).toMatch(/^WARN clock +this host's clock is 1(19|20|21) s ahead of 127\.0\.0\.1:\d+ — fix: /);
    expect(r.code).toBe(expectedExit(ls));
    expect([1, 3]).toContain(r.code);
  });

  it("fails a config with problems (every one listed) and a singleuser that is not there; --json says the same", async () => {
    const bad = config("bad.json", { log_level: "loud", lsiten: "x" });
    const r = await doctor(["--config", bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL config +.*bad\.json has 2 problems — fix: /m);
    expect(r.stdout).toMatch(/^ +log_level: must be one of/m);
    expect(r.stdout).toMatch(/^ +lsiten: unknown key/m);

    const missing = config("missing.json", { spawner: { kind: "local", cmd: ["/nonexistent/jupyterhub-singleuser"] } });
    const j = await doctor(["--config", missing, "--json"]);
    expect(j.code).toBe(1);
    const out = JSON.parse(j.stdout) as { exit: number; summary: { fail: number }; checks: { id: string; status: string; message: string; fix?: string }[] };
    expect(out.exit).toBe(1);
    expect(out.checks.find((c) => c.id === "singleuser")).toMatchObject({ status: "fail", message: "/nonexistent/jupyterhub-singleuser (spawner.cmd): no such executable file" });
    expect(out.summary.fail).toBeGreaterThanOrEqual(1);
    expect(j.stderr).toBe("");
  });

  it("has --help with the exit statuses, and refuses bad options with status 2", async () => {
    const h = await doctor(["--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("Exit status: 0 every check OK (or skipped), 1 at least one FAIL, 3 only WARNs, 2 a usage error.");
    expect((await doctor(["--timeout", "soon"])).code).toBe(2);
    expect((await doctor(["extra"])).code).toBe(2);
  });
});

describe("the version the hub reports", () => {
  it("is the singleuser's by default (read from its dist-info), and jupyterhub_version when set", async () => {
    const hub = await HubProcess.start({ config: { spawner: { cmd: [singleuser], args: [] } } });
    try {
      const res = await fetch(`${hub.url}/hub/api`);
      expect(await res.json()).toEqual({ version: "5.2.1" });
      expect(res.headers.get("x-jupyterhub-version")).toBe("5.2.1");
      expect(hub.output).toMatch(/"slicehub is listening".*"jupyterhub_version":"5\.2\.1"/);
      hub.writeConfig({ ...hub.config, jupyterhub_version: "4.0.0" });
      await hub.waitForLog(/config reloaded/);
      await expect.poll(async () => (await fetch(`${hub.url}/hub/api`)).headers.get("x-jupyterhub-version"), { timeout: 5000 }).toBe("4.0.0");
    } finally {
      await hub.stop();
    }
  });
});
