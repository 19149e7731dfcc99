// HTTPS under the installed service, in a real systemd: the certificate and key are root's alone (0600, in
// 0700 directories, as certbot leaves /etc/letsencrypt), yet the web process, which runs as the service user
// (started as it by slicehub.service, or dropped to it when started as root), serves them, and serves a renewal
// without a restart: it gets the files from the privileged helper (op tls-read, over whatever transport the
// helper uses), which reads the paths in its own copy of the config.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import tls from "node:tls";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { ROOT, SINGLEUSER } from "../e2e/harness.js";
import { haveOpenssl, LiveDir, TestCa } from "../e2e/tls-certs.js";
import { installArgs, removeAccounts, startHubService, SystemdSandbox } from "./sandbox.js";

const skip = SystemdSandbox.unavailable() ?? (haveOpenssl ? undefined : "openssl is not installed");
if (skip) console.warn(`skipping the systemd https tests: ${skip}`);

const hex = randomBytes(2).toString("hex");
const SERVICE_USER = `stl${hex}`;
const PREFIX = `stk${hex}-`;

function serial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca, timeout: 5_000 });
    s.once("secureConnect", () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.once("timeout", () => s.destroy(new Error("timeout")));
    s.once("error", reject);
  });
}

describe.skipIf(skip !== undefined)("https with root-only key files under systemd", () => {
  let sb: SystemdSandbox;
  let dir: string;
  let port: number;
  let ca: TestCa;
  let live: LiveDir;

  const sh = (argv: string[], what?: string) => sb.run(argv, { what });
  // This sandbox's units only, by invocation: the journal files are the host's, shared with other sandboxes.
  const journal = async () => {
    const ids: string[] = [];
    for (const unit of ["slicehub.service", "slicehub-helper.service"]) {
      const id = (await sb.exec(["systemctl", "show", unit, "-p", "InvocationID", "--value"])).stdout.trim();
      if (/^[0-9a-f]{32}$/.test(id)) ids.push(`_SYSTEMD_INVOCATION_ID=${id}`);
    }
    if (ids.length === 0) return "";
    return (await sb.exec(["journalctl", ...ids, "--no-pager", "-o", "cat"])).stdout;
  };

  /** Bounded: new connections until `want` is served. */
  async function served(want: string): Promise<string> {
    let last = "";
    for (let i = 0; i < 120 && last !== want; i++) {
      last = await serial(port, ca.pem).catch((e: Error) => `error: ${e.message}`);
      if (last !== want) await sleep(250);
    }
    if (last !== want) throw new Error(`serial ${want} not served (last: ${last}):\n${await journal()}`);
    return last;
  }

  beforeAll(async () => {
    dir = mkdtempSync("/var/lib/slicehub-test-");
    chmodSync(dir, 0o755);
    sb = await SystemdSandbox.boot({ keep: [ROOT] });
    port = await freePort();
    const etc = join(dir, "etc");
    await sh(installArgs(dir, SERVICE_USER));

    // certbot's layout and modes: everything root's, the key 0600, the directories 0700.
    const le = join(dir, "letsencrypt");
    mkdirSync(le, { mode: 0o700 });
    ca = TestCa.create(join(dir, "ca"));
    live = new LiveDir(le);
    for (const d of [le, join(le, "live"), join(le, "archive")]) chmodSync(d, 0o700);
    live.install(ca.leaf("first", "4001"));

    const config = {
      listen: `https://127.0.0.1:${port}`,
      state_dir: join(dir, "state"),
      run_as: SERVICE_USER,
      log_level: "debug",
      auth: { kind: "dev" },
      tls: { cert_file: live.fullchain, key_file: live.privkey, reload_check_s: 1, internal_listen: `http://127.0.0.1:${await freePort()}` },
      spawner: { kind: "systemd", cmd: [SINGLEUSER], unix_users: { prefix: PREFIX } },
    };
    writeFileSync(join(etc, "config.json"), JSON.stringify(config, null, 2));
    chownSync(join(etc, "config.json"), 0, Number(execFileSync("id", ["-g", SERVICE_USER]).toString().trim()));
    await startHubService(sb, dir);
  }, 180_000);

  afterAll(async () => {
    if (sb) {
      if (process.env.SLICEHUB_TEST_JOURNAL) console.log(await journal());
      await sb.exec(["systemctl", "stop", "slicehub"]).catch(() => undefined);
      await sb.stop();
    }
    removeAccounts((name) => name === SERVICE_USER || name.startsWith(PREFIX));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("serves the root-only pair after the drop, and its renewal through the helper, without a restart", async () => {
    expect(await served("4001")).toBe("4001");
    // The web process is the service user's and cannot open the key itself.
    const pid = (await sh(["systemctl", "show", "slicehub.service", "-p", "MainPID", "--value"])).trim();
    const uid = Number(/^Uid:\s+(\d+)/m.exec(await sh(["cat", `/proc/${pid}/status`]))?.[1]);
    expect(uid).toBe(Number(execFileSync("id", ["-u", SERVICE_USER]).toString().trim()));
    const denied = await sb.exec(["setpriv", `--reuid=${SERVICE_USER}`, `--regid=${SERVICE_USER}`, "--clear-groups", "cat", live.privkey]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/Permission denied/);

    // A renewal, root-only again: served from the next connection on, by the same process.
    live.install(ca.leaf("second", "4002"));
    expect(await served("4002")).toBe("4002");
    const log = await journal();
    expect(log).toMatch(/the privileged helper reads them from now on/);
    expect(log).toMatch(/serving a new TLS certificate.*"serial":"4002"/);
    expect((await sh(["systemctl", "show", "slicehub.service", "-p", "MainPID", "--value"])).trim()).toBe(pid);

    // A broken renewal (another certificate's key) keeps 4002.
    live.install(ca.leaf("third", "4003"), "key");
    for (let i = 0; i < 40 && !/does not work; still serving the current one/.test(await journal()); i++) await sleep(250);
    expect(await journal()).toMatch(/does not work; still serving the current one/);
    expect(await serial(port, ca.pem)).toBe("4002");
  }, 120_000);
});
