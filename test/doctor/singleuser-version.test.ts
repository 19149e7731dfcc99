// Finding the jupyterhub version behind a singleuser command from files, without starting Python: a venv with
// pip's dist-info, a #!/usr/bin/env python3 line, a bare _version.py, setuptools' launcher; and the --version
// fallback, bounded. Fakes in temp dirs, plus the real Debian package where it is installed.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.js";
import {
  clearSingleuserVersionCache,
  detectByRunning,
  detectFromFiles,
  detectSingleuserVersion,
  findOnPath,
  normalizeVersion,
  reportedJupyterhubVersion,
  shebangInterpreter,
} from "../../src/singleuser-version.js";

const dir = mkdtempSync(join(tmpdir(), "slicehub-suv-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(path: string, text: string, mode = 0o644): string {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

/** A venv: bin/python3.12 (a script standing in for the interpreter), site-packages with what `put` writes. */
function venv(name: string, put: (site: string) => void, shebang?: string): string {
  const root = join(dir, name);
  const python = file(join(root, "bin", "python3.12"), "#!/bin/sh\nexit 1\n", 0o755);
  symlinkSync("python3.12", join(root, "bin", "python3"));
  const site = join(root, "lib", "python3.12", "site-packages");
  mkdirSync(site, { recursive: true });
  put(site);
  file(join(root, "bin", "jupyterhub-singleuser"), `${shebang ?? `#!${join(root, "bin", "python3")}`}\nimport sys\nfrom jupyterhub.singleuser import main\nsys.exit(main())\n`, 0o755);
  void python;
  return root;
}

describe("singleuser version from files", () => {
  it("reads pip's dist-info METADATA in the venv of the command's #! line", () => {
    const root = venv("pip", (site) => file(join(site, "jupyterhub-5.2.1.dist-info", "METADATA"), "Metadata-Version: 2.1\nName: jupyterhub\nVersion: 5.2.1\n"));
    const r = detectFromFiles(join(root, "bin", "jupyterhub-singleuser"));
    expect(r).toMatchObject({ version: "5.2.1", source: "dist-info" });
    expect(r.from).toBe(join(root, "lib", "python3.12", "site-packages", "jupyterhub-5.2.1.dist-info", "METADATA"));
  });

  it("finds the command on PATH and follows #!/usr/bin/env python3 on the same PATH", () => {
    const root = venv("env", (site) => file(join(site, "jupyterhub-4.1.0b1.dist-info", "METADATA"), "Name: jupyterhub\nVersion: 4.1.0b1\n"), "#!/usr/bin/env python3");
    const path = join(root, "bin");
    expect(findOnPath("jupyterhub-singleuser", path)).toBe(join(path, "jupyterhub-singleuser"));
    expect(shebangInterpreter("#!/usr/bin/env python3\n", path)).toBe(join(path, "python3"));
    expect(detectFromFiles("jupyterhub-singleuser", path)).toMatchObject({ version: "4.1.0", source: "dist-info" });
  });

  it("falls back to jupyterhub/_version.py, then to setuptools' launcher line", () => {
    const root = venv("src", (site) => file(join(site, "jupyterhub", "_version.py"), 'version_info = (4, 0, 2, "", "")\n__version__ = "4.0.2"\n'));
    expect(detectFromFiles(join(root, "bin", "jupyterhub-singleuser"))).toMatchObject({ version: "4.0.2", source: "_version.py" });
    const launcher = file(join(dir, "launcher", "jupyterhub-singleuser"), "#!/nowhere/python3\n# EASY-INSTALL-ENTRY-SCRIPT: 'jupyterhub==3.1.1','console_scripts','jupyterhub-singleuser'\n", 0o755);
    expect(detectFromFiles(launcher)).toMatchObject({ version: "3.1.1", source: "launcher" });
  });

  it("says why when it cannot tell", () => {
    expect(detectFromFiles("no-such-singleuser-command", "/nonexistent")).toMatchObject({ version: undefined, problem: "not found on PATH" });
    const sh = file(join(dir, "sh", "server"), "#!/bin/sh\nexec sleep 1\n", 0o755);
    expect(detectFromFiles(sh)).toMatchObject({ version: undefined, problem: "not a Python script (no python #! line)" });
    const bare = venv("bare", () => {});
    expect(detectFromFiles(join(bare, "bin", "jupyterhub-singleuser")).problem).toMatch(/^no jupyterhub package found for /);
  });

  it("normalizes PEP 440 versions to X.Y.Z", () => {
    expect(normalizeVersion("5.2.1")).toBe("5.2.1");
    expect(normalizeVersion("5.0")).toBe("5.0.0");
    expect(normalizeVersion("4.1.0rc2")).toBe("4.1.0");
    expect(normalizeVersion("dev")).toBeUndefined();
  });

  it.runIf(existsSync("/usr/bin/jupyterhub-singleuser"))("reads Debian's jupyterhub package (egg-info) without running it", () => {
    const r = detectFromFiles("/usr/bin/jupyterhub-singleuser");
    expect(r.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(r.source).not.toBe("--version");
  });
});

describe("singleuser version by running --version", () => {
  it("runs the command when the files do not say, and gives up after the timeout", async () => {
    const talks = file(join(dir, "run", "talks"), "#!/bin/sh\necho 'starting' >&2\necho 5.3.0\n", 0o755);
    expect(await detectSingleuserVersion(talks)).toMatchObject({ version: "5.3.0", source: "--version" });
    const hangs = file(join(dir, "run", "hangs"), "#!/bin/sh\nexec sleep 30\n", 0o755);
    const r = await detectByRunning(hangs, 300);
    expect(r.version).toBeUndefined();
    expect(r.problem).toMatch(/timed out after 300 ms/);
  });
});

describe("a command other accounts can change", () => {
  it("is never run for its --version (its files are still read)", async () => {
    const shared = join(dir, "shared");
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(shared, 0o777); // like a venv a user may write to
    const marker = join(dir, "ran");
    const evil = file(join(shared, "jupyterhub-singleuser"), `#!/bin/sh\ntouch ${marker}\necho 9.9.9\n`, 0o755);
    const r = await detectSingleuserVersion(evil);
    expect(r.version).toBeUndefined();
    expect(r.problem).toMatch(/--version not run: .*shared can be changed by another account \(owner uid \d+, mode 777\)/);
    const writable = file(join(dir, "run3", "singleuser"), `#!/bin/sh\ntouch ${marker}\necho 9.9.9\n`, 0o757);
    expect((await detectByRunning(writable)).problem).toMatch(/singleuser can be changed by another account/);
    expect(existsSync(marker)).toBe(false);
  });
});

describe("the reported version", () => {
  it("is the config's when set, else the detected one, else 3.0.0", async () => {
    clearSingleuserVersionCache();
    const root = venv("reported", (site) => file(join(site, "jupyterhub-5.1.0.dist-info", "METADATA"), "Version: 5.1.0\n"));
    const cmd = join(root, "bin", "jupyterhub-singleuser");
    const base = ConfigSchema.parse({ spawner: { kind: "local", cmd: [cmd] } });
    expect(base.jupyterhub_version).toBeUndefined();
    expect(reportedJupyterhubVersion(base)).toBe("5.1.0");
    expect(reportedJupyterhubVersion({ ...base, jupyterhub_version: "4.0.0" })).toBe("4.0.0");
    expect(reportedJupyterhubVersion(ConfigSchema.parse({ spawner: { kind: "local", cmd: ["/nonexistent/singleuser"] } }))).toBe("3.0.0");
    // A shell script the files say nothing about: 3.0.0 at once, then its --version's answer (run in the background).
    const talks = file(join(dir, "run2", "talks"), "#!/bin/sh\necho 4.2.0\n", 0o755);
    const cfg = ConfigSchema.parse({ spawner: { kind: "local", cmd: [talks] } });
    expect(reportedJupyterhubVersion(cfg)).toBe("3.0.0");
    await expect.poll(() => reportedJupyterhubVersion(cfg), { timeout: 5000 }).toBe("4.2.0");
  });
});
