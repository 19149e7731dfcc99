import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SystemdSpawnerSchema } from "../../src/config/schema.js";
import { cpuQuota, namedUnitsOf, sliceSetPropertyArgv, systemdEscape, systemdRunArgv, unitNames, type UnitSpec } from "../../spawners/systemd/units.js";

const WRAPPER = fileURLToPath(new URL("../../spawners/systemd/slicehub-server-wrapper", import.meta.url));
const TOKEN = "5f0c7e1b9a2d4c8e8f3b6a1d2e4c9b7a";

const defaults = SystemdSpawnerSchema.parse({ kind: "systemd" });
const ALL_OFF = Object.fromEntries(Object.entries(defaults.hardening).map(([k, v]) => [k, typeof v === "boolean" ? false : "no"])) as UnitSpec["hardening"];

function spec(over: Partial<UnitSpec> = {}): UnitSpec {
  return {
    ...unitNames("ada", ""),
    uid: 1001,
    gid: 1002,
    home: "/home/jupyter-ada",
    argv: ["jupyterhub-singleuser", "--debug"],
    env: { JUPYTERHUB_USER: "ada" },
    credentialPath: "/run/slicehub/tokens/ada",
    wrapperPath: "/usr/lib/slicehub/slicehub-server-wrapper",
    limits: {},
    hardening: defaults.hardening,
    properties: {},
    description: "slicehub server for ada",
    ...over,
  };
}

/** The values of every `-p` option, in order. */
function props(argv: string[]): string[] {
  const cut = argv.indexOf("--");
  return argv.slice(0, cut).flatMap((a, i) => (argv[i - 1] === "-p" ? [a] : []));
}

describe("systemdEscape", () => {
  const names = ["alice", "a-b", "a.b", ".x", "a b", "ü", "a/b", "x.", "A:_Z", "a\\b"];
  it.each(names)("matches systemd-escape for %j", (name) => {
    const expected = execFileSync("systemd-escape", ["--", name], { encoding: "utf8" }).trimEnd();
    expect(systemdEscape(name)).toBe(expected);
  });
});

describe("namedUnitsOf (what the root helper counts against the named-server limit)", () => {
  it("finds a user's named units and nobody else's, whatever the names", () => {
    const units = [
      ["alice", ""],
      ["alice", "foo"],
      ["alice", "bar-baz"],
      ["alice-foo", ""],
      ["alice-foo", "x"],
      ["alice.b", "y"],
      ["al", "ice-foo"],
    ].map(([u, s]) => unitNames(u!, s!).unit);
    expect(namedUnitsOf("alice", units)).toEqual([unitNames("alice", "foo").unit, unitNames("alice", "bar-baz").unit]);
    expect(namedUnitsOf("alice-foo", units)).toEqual([unitNames("alice-foo", "x").unit]);
    expect(namedUnitsOf("al", units)).toEqual([unitNames("al", "ice-foo").unit]);
    expect(namedUnitsOf("bob", units)).toEqual([]);
  });
});

describe("unitNames", () => {
  it("puts the default and named servers in the user's slice under slicehub.slice", () => {
    expect(unitNames("alice", "")).toEqual({ slice: "slicehub-alice.slice", unit: "slicehub-server-alice.service" });
    expect(unitNames("alice", "gpu")).toEqual({ slice: "slicehub-alice.slice", unit: "slicehub-server-alice-gpu.service" });
  });

  it("escapes dashes, so names cannot add levels to the slice hierarchy", () => {
    const { slice, unit } = unitNames("a-b", "c-d");
    expect(slice).toBe("slicehub-a\\x2db.slice");
    expect(unit).toBe("slicehub-server-a\\x2db-c\\x2dd.service");
    // systemd's dash rule: the parent of slicehub-X.slice is everything before the last dash.
    expect(slice.split("-")).toHaveLength(2);
  });

  it("never maps two (user, server) pairs to one unit", () => {
    const parts = ["a", "b", "a-b", "b-a", "a.b", ".a", "a-", "-a", "a--b", "server"];
    const seen = new Map<string, string>();
    for (const user of parts) {
      for (const server of ["", ...parts]) {
        const { unit } = unitNames(user, server);
        expect(seen.get(unit), `${user}/${server}`).toBeUndefined();
        seen.set(unit, `${user}/${server}`);
      }
    }
  });

  it("refuses names that would not survive escaping", () => {
    expect(() => unitNames("", "")).toThrow(/user name/);
    expect(() => unitNames("a/b", "")).toThrow(/"\/"/);
    expect(() => unitNames("a", "b/c")).toThrow(/"\/"/);
    expect(() => unitNames("a".repeat(64), "-".repeat(64))).toThrow(/longer than 255/);
  });
});

describe("cpuQuota", () => {
  it("turns CPUs into a percentage with at most two decimals", () => {
    expect(cpuQuota(1.5)).toBe("150%");
    expect(cpuQuota(1.1)).toBe("110%");
    expect(cpuQuota(1 / 3)).toBe("33.33%");
  });
});

describe("systemdRunArgv", () => {
  it("builds the whole command", () => {
    expect(systemdRunArgv(spec({ hardening: ALL_OFF }))).toEqual([
      "systemd-run", "--unit", "slicehub-server-ada.service", "--slice", "slicehub-ada.slice",
      "--description", "slicehub server for ada",
      "--uid", "1001", "--gid", "1002", "--working-directory", "/home/jupyter-ada",
      "-p", "Type=exec", "-p", "OOMPolicy=continue",
      "-p", "LoadCredential=jupyterhub-api-token:/run/slicehub/tokens/ada",
      "--setenv=JUPYTERHUB_USER=ada",
      "--", "/usr/lib/slicehub/slicehub-server-wrapper", "jupyterhub-singleuser", "--debug",
    ]);
  });

  it("turns on every hardening switch by default", () => {
    expect(props(systemdRunArgv(spec()))).toEqual([
      "Type=exec", "OOMPolicy=continue",
      "NoNewPrivileges=yes", "PrivateTmp=yes", "PrivateDevices=yes",
      "ProtectSystem=strict", "ReadWritePaths=/home/jupyter-ada",
      "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
      "ProtectControlGroups=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes",
      "LoadCredential=jupyterhub-api-token:/run/slicehub/tokens/ada",
    ]);
  });

  const switches: [keyof UnitSpec["hardening"], string[]][] = [
    ["no_new_privileges", ["NoNewPrivileges=yes"]],
    ["private_tmp", ["PrivateTmp=yes"]],
    ["private_devices", ["PrivateDevices=yes"]],
    ["protect_kernel", ["ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes"]],
    ["protect_control_groups", ["ProtectControlGroups=yes"]],
    ["restrict_suid_sgid", ["RestrictSUIDSGID=yes"]],
    ["lock_personality", ["LockPersonality=yes"]],
  ];
  it.each(switches)("%s alone sets only %j", (key, expected) => {
    const on = props(systemdRunArgv(spec({ hardening: { ...ALL_OFF, [key]: true } })));
    expect(on.filter((p) => !/^(Type|OOMPolicy|LoadCredential)=/.test(p))).toEqual(expected);
    const off = props(systemdRunArgv(spec({ hardening: { ...defaults.hardening, [key]: false } })));
    for (const p of expected) expect(off).not.toContain(p);
  });

  it("makes the home writable only when ProtectSystem=strict makes it read-only", () => {
    const with_ = (protect_system: UnitSpec["hardening"]["protect_system"]) =>
      props(systemdRunArgv(spec({ hardening: { ...ALL_OFF, protect_system } }))).filter((p) => /^(ProtectSystem|ReadWritePaths)=/.test(p));
    expect(with_("strict")).toEqual(["ProtectSystem=strict", "ReadWritePaths=/home/jupyter-ada"]);
    expect(with_("full")).toEqual(["ProtectSystem=full"]);
    expect(with_("yes")).toEqual(["ProtectSystem=yes"]);
    expect(with_("no")).toEqual([]);
  });

  it("sets the limits it is given", () => {
    const limited = props(systemdRunArgv(spec({ hardening: ALL_OFF, limits: { memory: "1.5G", cpu: 2, tasks: 100 } })));
    expect(limited).toEqual(expect.arrayContaining(["MemoryMax=1.5G", "CPUQuota=200%", "TasksMax=100"]));
    const unlimited = props(systemdRunArgv(spec({ hardening: ALL_OFF })));
    expect(unlimited.some((p) => /^(MemoryMax|CPUQuota|TasksMax)=/.test(p))).toBe(false);
  });

  it("puts config properties first, so what slicehub sets wins", () => {
    const argv = systemdRunArgv(spec({ properties: { IOWeight: "50", MemoryMax: "100G" }, limits: { memory: "2G" } }));
    const p = props(argv);
    expect(p.slice(0, 2)).toEqual(["IOWeight=50", "MemoryMax=100G"]);
    expect(p.lastIndexOf("MemoryMax=2G")).toBeGreaterThan(p.indexOf("MemoryMax=100G"));
  });

  it("never carries the token, and refuses env names that look like secrets", () => {
    const argv = systemdRunArgv(spec());
    expect(argv.join("\n")).not.toContain(TOKEN);
    for (const key of ["JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "OIDC_client_secret", "token"]) {
      expect(() => systemdRunArgv(spec({ env: { [key]: TOKEN } }))).toThrow(/secret/);
    }
  });

  it("passes env values with blanks and quotes as one argument, and refuses line breaks", () => {
    const argv = systemdRunArgv(spec({ env: { A: "x y  'z\" $HOME %n" } }));
    expect(argv).toContain("--setenv=A=x y  'z\" $HOME %n");
    expect(() => systemdRunArgv(spec({ env: { A: "x\ny" } }))).toThrow(/env\.A: .*line breaks/);
    expect(() => systemdRunArgv(spec({ env: { A: "x\ry" } }))).toThrow(/line breaks/);
    expect(() => systemdRunArgv(spec({ env: { "A=B": "x" } }))).toThrow(/not a variable name/);
  });

  it("escapes $ in the command, which systemd would expand", () => {
    const argv = systemdRunArgv(spec({ argv: ["sh", "-c", "echo $HOME ${X} %n"] }));
    expect(argv.slice(argv.indexOf("--") + 1)).toEqual(["/usr/lib/slicehub/slicehub-server-wrapper", "sh", "-c", "echo $$HOME $${X} %n"]);
  });

  it("refuses a home ReadWritePaths= would misread and multi-line properties", () => {
    expect(() => systemdRunArgv(spec({ home: "/home/a b" }))).toThrow(/home/);
    expect(() => systemdRunArgv(spec({ home: "home/a" }))).toThrow(/absolute/);
    expect(() => systemdRunArgv(spec({ properties: { IOWeight: "1\nUser=root" } }))).toThrow(/spans lines/);
    expect(() => systemdRunArgv(spec({ description: "a\nb" }))).toThrow(/one line/);
  });
});

describe("sliceSetPropertyArgv", () => {
  it("sets the slice's limits at runtime, or nothing", () => {
    expect(sliceSetPropertyArgv("slicehub-ada.slice", { memory: "4G", cpu: 0.5, tasks: 500 })).toEqual([
      "systemctl", "set-property", "--runtime", "slicehub-ada.slice", "MemoryMax=4G", "CPUQuota=50%", "TasksMax=500",
    ]);
    expect(sliceSetPropertyArgv("slicehub-ada.slice", {})).toBeNull();
  });
});

describe("slicehub-server-wrapper", () => {
  function runWrapper(credentials: string | undefined, argv: string[]) {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
    if (credentials !== undefined) env.CREDENTIALS_DIRECTORY = credentials;
    return spawnSync(WRAPPER, argv, { env, encoding: "utf8" });
  }

  it("is committed executable", () => {
    expect(statSync(WRAPPER).mode & 0o777).toBe(0o755);
  });

  it("exports the credential as both token variables and execs the command", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "slicehub-cred-"));
    try {
      writeFileSync(path.join(dir, "jupyterhub-api-token"), `${TOKEN}\n`, { mode: 0o400 });
      const r = runWrapper(dir, ["sh", "-c", 'echo "$JUPYTERHUB_API_TOKEN|$JPY_API_TOKEN|$$"; echo "$1"', "sh", "arg with space"]);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${TOKEN}|${TOKEN}|${r.pid}\narg with space\n`);
      expect(r.stderr).toBe("");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails clearly without the credential", () => {
    for (const credentials of [undefined, "/nonexistent"]) {
      const r = runWrapper(credentials, ["true"]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/no credential jupyterhub-api-token .*LoadCredential=/);
    }
  });
});
