// The sshd drop-in, the AuthorizedKeysCommand wrapper and the SSH limits, as text (src/ssh/sshd.ts). What sshd
// makes of them is tested with the real sshd in test/systemd/ssh.e2e.test.ts.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import { keysCommandScript, sizeBytes, sshdDropIn, sshLimits, userSliceDropIn } from "../../src/ssh/sshd.js";

function config(text: object): Config {
  const r = parseConfigText(JSON.stringify(text), "test.json", "/etc/slicehub");
  if (!r.ok) throw new Error(r.errors.join("\n"));
  return r.config;
}

describe("the sshd drop-in", () => {
  it("matches only the prefix's accounts, minus the excluded ones, with keys from slicehub only", () => {
    const text = sshdDropIn({ prefix: "jupyter-", serviceUser: "slicehub", enabled: true, exclude: ["jupyter-admin", "other"] });
    const lines = text.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
    expect(lines[0]).toBe("Match User jupyter-*,!jupyter-admin");
    const settings = Object.fromEntries(lines.slice(1).map((l) => [l.trim().split(/\s+/)[0], l.trim().split(/\s+/).slice(1).join(" ")]));
    expect(settings).toMatchObject({
      AuthenticationMethods: "publickey",
      AuthorizedKeysFile: "none",
      AuthorizedKeysCommand: "/usr/local/libexec/slicehub/authorized-keys %u",
      AuthorizedKeysCommandUser: "slicehub",
      PasswordAuthentication: "no",
      KbdInteractiveAuthentication: "no",
      AllowTcpForwarding: "local",
      X11Forwarding: "no",
      AllowAgentForwarding: "no",
      PermitTunnel: "no",
      GatewayPorts: "no",
    });
    // Everything after the Match line is indented: nothing in this file applies outside it.
    expect(lines.slice(1).every((l) => l.startsWith("    "))).toBe(true);
  });

  it("admits nobody when SSH is off: no keys command, no key files", () => {
    const text = sshdDropIn({ prefix: "jupyter-", serviceUser: "slicehub", enabled: false });
    expect(text).not.toMatch(/^\s*AuthorizedKeysCommand/m);
    expect(text).toMatch(/^\s*AuthorizedKeysFile none$/m);
    expect(text).toMatch(/^\s*AuthenticationMethods publickey$/m);
  });

  it("refuses what sshd would read as a pattern or a second token", () => {
    expect(() => sshdDropIn({ prefix: "", serviceUser: "slicehub", enabled: true })).toThrow();
    expect(() => sshdDropIn({ prefix: "a*", serviceUser: "slicehub", enabled: true })).toThrow();
    expect(() => sshdDropIn({ prefix: "j,!x", serviceUser: "slicehub", enabled: true })).toThrow();
    expect(() => sshdDropIn({ prefix: "jupyter-", serviceUser: "slice hub", enabled: true })).toThrow();
    expect(() => sshdDropIn({ prefix: "jupyter-", serviceUser: "slicehub", enabled: true, keysCommand: "/a b" })).toThrow();
  });
});

describe("the AuthorizedKeysCommand wrapper", () => {
  it("execs node on the entry with the config and only the user name, whatever the paths hold", () => {
    const dir = mkdtempSync(join(tmpdir(), "slicehub-wrapper-"));
    try {
      const script = join(dir, "authorized-keys");
      // A stand-in "node" that prints its arguments, one per line.
      const node = join(dir, "it's node");
      writeFileSync(node, '#!/bin/sh\nfor a; do echo "[$a]"; done\n');
      chmodSync(node, 0o755);
      writeFileSync(script, keysCommandScript({ node, entry: "/opt/slice hub/dist/authorized-keys.js", configPath: "/etc/$HOME/config.json" }));
      chmodSync(script, 0o755);
      const out = execFileSync(script, ["jupyter-alice", "extra"]).toString();
      expect(out).toBe("[/opt/slice hub/dist/authorized-keys.js]\n[--config]\n[/etc/$HOME/config.json]\n[jupyter-alice]\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("SSH limits", () => {
  const base = { auth: { kind: "dev" }, ssh: { enabled: true } };
  it("are the default profile's, capped by the slice's", () => {
    const cfg = config({
      ...base,
      spawner: {
        kind: "systemd",
        slice_limits: { memory: "1G", tasks: 1000 },
        profiles: [
          { name: "big", title: "Big", memory: "4G", cpu: 2, tasks: 300, users: ["bob"] },
          { name: "small", title: "Small", memory: "512M", cpu: 0.5 },
        ],
      },
    });
    expect(sshLimits(cfg, "alice")).toEqual({ memoryBytes: 512 * 2 ** 20, cpu: 0.5, tasks: 1000 });
    expect(sshLimits(cfg, "bob")).toEqual({ memoryBytes: 2 ** 30, cpu: 2, tasks: 300 });
  });

  it("are the slice's when no profile is open, and none without either", () => {
    const cfg = config({ ...base, spawner: { kind: "systemd", slice_limits: { memory: "2G" }, profiles: [{ name: "x", title: "X", memory: "1G", users: ["bob"] }] } });
    expect(sshLimits(cfg, "alice")).toEqual({ memoryBytes: 2 * 2 ** 30, cpu: undefined, tasks: undefined });
    expect(sshLimits(config({ ...base, spawner: { kind: "systemd" } }), "alice")).toEqual({ memoryBytes: undefined, cpu: undefined, tasks: undefined });
  });

  it("become a slice drop-in; an unset limit is left to systemd's defaults", () => {
    expect(userSliceDropIn({ memoryBytes: 2 ** 30, cpu: 1.5, tasks: 256 }, "x")).toMatch(/\[Slice\]\nMemoryMax=1073741824\nCPUQuota=150%\nTasksMax=256\n$/);
    expect(userSliceDropIn({}, "x")).toMatch(/\[Slice\]\n$/);
    expect(() => userSliceDropIn({}, "a\nb")).toThrow();
  });

  it("read sizes as systemd does", () => {
    expect(sizeBytes("1.5G")).toBe(1.5 * 2 ** 30);
    expect(sizeBytes("2048")).toBe(2048);
    expect(() => sizeBytes("2GB")).toThrow();
  });
});

describe("ssh config", () => {
  it("needs the systemd spawner", () => {
    const r = parseConfigText(JSON.stringify({ ssh: { enabled: true } }), "test.json", "/etc/slicehub");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.join("\n")).toMatch(/ssh\.enabled: .*only the systemd spawner has/);
    expect(parseConfigText(JSON.stringify({ ssh: { enabled: false } }), "test.json", "/etc/slicehub").ok).toBe(true);
  });
});
