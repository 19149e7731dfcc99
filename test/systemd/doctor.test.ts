// `slicehub doctor` as root inside a real systemd (the sandbox): systemd as PID 1 and its version, the cgroup
// hierarchy as this host really has it, a run_as account that does not exist, slicehub.service not running.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SystemdSandbox } from "./sandbox.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const CLI = path.join(REPO, "dist/slicehub.js");
// Never created: the check must say it is missing. Unique to this file.
const SERVICE_USER = `sdd${randomBytes(3).toString("hex")}`;
const PREFIX = `sdx${randomBytes(2).toString("hex")}-`;
const unavailable = SystemdSandbox.unavailable();

interface Report {
  exit: number;
  checks: { id: string; status: string; message: string; fix?: string }[];
}

describe.skipIf(unavailable)(`slicehub doctor under a real systemd${unavailable ? ` — skipped: ${unavailable}` : ""}`, () => {
  let sb: SystemdSandbox;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "slicehub-doctor-sd-"));
    sb = await SystemdSandbox.boot({ keep: [REPO, dir] });
  });
  afterAll(async () => {
    await sb?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reports systemd, cgroups, the service user and the unit as they are", async () => {
    const config = path.join(dir, "config.json");
    writeFileSync(
      config,
      JSON.stringify({
        listen: "http://127.0.0.1:8000",
        state_dir: path.join(dir, "state"),
        run_as: SERVICE_USER,
        spawner: { kind: "systemd", unix_users: { prefix: PREFIX, home: dir } },
      }),
    );
    const r = await sb.exec([process.execPath, CLI, "doctor", "--config", config, "--json"], { timeoutMs: 60_000 });
    const report = JSON.parse(r.stdout) as Report;
    const check = (id: string) => report.checks.find((c) => c.id === id)!;
    expect(check("config").status).toBe("ok");
    expect(check("systemd")).toMatchObject({ status: "ok", message: expect.stringMatching(/^systemd \d+ \(needs 247/) });
    // This host's cgroup hierarchy is shared with the sandbox: v2 with the controllers passes, v1 (some CI
    // containers) fails with the fix.
    const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
    if (v2) expect(check("cgroup").status).toMatch(/^(ok|fail)$/);
    else expect(check("cgroup")).toMatchObject({ status: "fail", fix: expect.stringContaining("unified") });
    expect(check("service-user")).toMatchObject({ status: "fail", message: `no Unix account ${SERVICE_USER} (run_as) to drop privileges to` });
    // The host's /etc/systemd/system is the sandbox's too: installed or not, the hub is not running in it.
    expect(check("unit")).toMatchObject({ status: "warn", message: expect.stringMatching(/^slicehub\.service is (not installed|inactive)$/) });
    expect(check("helper-unit").status).toMatch(/^(skip|warn)$/);
    expect(check("disk-homes").message).toContain(`free in ${dir} (spawner.unix_users.home)`);
    expect(report.exit).toBe(1);
    expect(r.code).toBe(1);
  });
});
