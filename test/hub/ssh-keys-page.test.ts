// The "Connecting" box of /hub/ssh-keys under the systemd spawner with SSH enabled (in-process: the e2e page
// test runs the local spawner, where SSH is not offered): the account name is unixAccountName's, the host and
// port come from ssh.host/ssh.port or the public URL, and VS Code gets a ~/.ssh/config entry.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createHubApp } from "../../main/app.js";
import { Lifecycle } from "../../src/lifecycle.js";
import { log } from "../../src/log.js";
import { Store } from "../../src/store/store.js";
import { RouteTable } from "../../proxy/table.js";
import { unixAccountName } from "../../spawners/accounts.js";
import { config, FakeSpawner } from "./fakes.js";

async function pageFor(user: string, cfgText: string): Promise<string> {
  const cfg = config(cfgText);
  const store = new Store(":memory:");
  const lifecycle = new Lifecycle({ store, spawner: new FakeSpawner(), table: new RouteTable(), config: () => cfg, log });
  try {
    const app = createHubApp({ store, lifecycle, config: () => cfg, log });
    const u = store.ensureUser(user, false);
    const token = store.createToken({ userId: u.id, kind: "api", scopes: ["inherit"] }).token;
    const res = await app.request("/hub/ssh-keys", { headers: { authorization: `token ${token}` } });
    expect(res.status).toBe(200);
    return await res.text();
  } finally {
    await lifecycle.close();
    store.close();
  }
}

const decode = (html: string) => html.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, "&");

describe("SSH keys page: how to connect", () => {
  it("shows ssh ACCOUNT@HOST and a VS Code Remote-SSH host entry", async () => {
    const html = decode(await pageFor("alice", `{ "log_level": "error", "public_url": "http://127.0.0.1:8000", "spawner": { "kind": "systemd" }, "ssh": { "enabled": true } }`));
    expect(html).toContain("<code>ssh jupyter-alice@127.0.0.1</code>");
    expect(html).toContain("Host slicehub\n    HostName 127.0.0.1\n    User jupyter-alice\n");
    expect(html).toMatch(/Remote-SSH: Connect to Host/);
  });

  it("uses ssh.host and ssh.port, and the shortened account name of a long user name", async () => {
    const long = "a-very-long-hub-user-name-that-needs-shortening";
    const html = decode(await pageFor(long, `{ "log_level": "error", "spawner": { "kind": "systemd", "unix_users": { "prefix": "u-" } }, "ssh": { "enabled": true, "host": "ssh.example.org", "port": 2222 } }`));
    const account = unixAccountName("u-", long);
    expect(html).toContain(`<code>ssh -p 2222 ${account}@ssh.example.org</code>`);
    expect(html).toContain(`    Port 2222\n    User ${account}\n`);
  });

  it("says SSH is off when ssh.enabled is false", async () => {
    const html = decode(await pageFor("alice", `{ "log_level": "error", "spawner": { "kind": "systemd" } }`));
    expect(html).toMatch(/SSH logins are not enabled on this hub/);
    expect(html).not.toContain("ssh jupyter-alice@");
  });
});

describe("SSH keys page: adding when the account cannot be prepared", () => {
  it("keeps the key and says why SSH will not work yet", async () => {
    const cfg = config(`{ "log_level": "error", "spawner": { "kind": "systemd" }, "ssh": { "enabled": true } }`);
    const store = new Store(":memory:");
    const lifecycle = new Lifecycle({ store, spawner: new FakeSpawner(), table: new RouteTable(), config: () => cfg, log });
    const dir = mkdtempSync(join(tmpdir(), "slicehub-ssh-page-"));
    try {
      const sshPrepare = async () => {
        throw new Error("group lab in spawner.unix_users.groups does not exist");
      };
      const app = createHubApp({ store, lifecycle, config: () => cfg, log, sshPrepare });
      const u = store.ensureUser("alice", false);
      const token = store.createToken({ userId: u.id, kind: "api", scopes: ["inherit"] }).token;
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "k")]);
      const res = await app.request("/hub/ssh-keys", {
        method: "POST",
        headers: { authorization: `token ${token}` },
        body: new URLSearchParams({ key: readFileSync(join(dir, "k.pub"), "utf8") }),
      });
      expect(res.status).toBe(200);
      expect(decode(await res.text())).toMatch(/role="alert">\s*The key was added, but your Unix account could not be prepared for SSH logins: group lab/);
      expect(store.listSshKeys(u.id).length).toBe(1);
    } finally {
      await lifecycle.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
