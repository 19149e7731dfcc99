import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { configJsonSchema, embeddedDefaultConfig, loadConfigFile, parseConfigText } from "../../src/config/load.js";

// The 1-based line:col of the first occurrence of `needle`, so expectations stay readable when a fixture changes.
function posOf(text: string, needle: string): string {
  const offset = text.indexOf(needle);
  if (offset < 0) throw new Error(`fixture does not contain ${needle}`);
  const before = text.slice(0, offset).split("\n");
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

function errorsOf(text: string): string[] {
  const result = parseConfigText(text, "config.json", "/etc/slicehub");
  if (result.ok) throw new Error("expected the config to be rejected");
  return result.errors;
}

function configOf(text: string) {
  const result = parseConfigText(text, "config.json", "/etc/slicehub");
  if (!result.ok) throw new Error(`expected the config to be accepted: ${result.errors.join("\n")}`);
  return result.config;
}

describe("parseConfigText: syntax", () => {
  it("accepts comments and trailing commas", () => {
    const config = configOf(`{
      // line comment
      /* block
         comment */
      "log_level": "debug", // after a value
      "auth": { "kind": "dev", "admin_users": ["ada", "bob",], },
    }`);
    expect(config.log_level).toBe("debug");
    expect(config.auth.admin_users).toEqual(["ada", "bob"]);
  });

  it("reports a missing comma at its line:col, prefixed with the source", () => {
    const text = `{\n  "log_level": "debug"\n  "state_dir": "/var/lib/slicehub"\n}`;
    expect(errorsOf(text)).toEqual([`config.json: expected "," between items (${posOf(text, '"state_dir"')})`]);
  });

  it("leaves out the parser's cascade after an unclosed bracket", () => {
    const text = `{\n  "auth": { "admin_users": ["ada", }\n}`;
    expect(errorsOf(text)).toEqual([`config.json: expected a value (${posOf(text, "}")})`]);
  });

  it("reports separate syntax errors on separate lines", () => {
    const text = `{\n  "log_level": 'info',\n  "state_dir" "/x"\n}`;
    expect(errorsOf(text)).toEqual([
      `config.json: unexpected character (${posOf(text, "'info'")})`,
      `config.json: expected ":" after the property name (${posOf(text, '"/x"')})`,
    ]);
  });

  it("reports an unclosed comment and an unclosed string", () => {
    expect(errorsOf(`{ /* never closed\n}`)[0]).toMatch(/^config\.json: comment is not closed \(missing \*\/\) \(1:3\)$/);
    expect(errorsOf(`{ "log_level": "info }`)[0]).toMatch(/^config\.json: string is not closed/);
  });

  it("explains an empty file", () => {
    expect(errorsOf("  \n")).toEqual(["config.json: the file is empty (write {} to use every default)"]);
  });

  it("ignores a byte-order mark", () => {
    expect(configOf('\uFEFF{ "log_level": "warn" }').log_level).toBe("warn");
  });

  it("rejects a document that is not an object", () => {
    expect(errorsOf("[]")).toEqual(["(root): expected object, got array (1:1)"]);
  });
});

describe("parseConfigText: schema", () => {
  it("uses every default for {}", () => {
    const config = configOf("{}");
    expect(config.listen).toBe("http://127.0.0.1:8000");
    expect(config.auth).toEqual({ kind: "dev", admin_users: [] });
    expect(config.spawner.kind).toBe("local");
    expect(config.spawner.cmd).toEqual(["jupyterhub-singleuser"]);
    expect(config.session.idle_timeout_s).toBe(14 * 86_400);
  });

  it("reports an unknown root key with a suggestion, at the key", () => {
    const text = `{\n  "lisen": "http://127.0.0.1:8000"\n}`;
    expect(errorsOf(text)).toEqual([`lisen: unknown key (did you mean "listen"?) (${posOf(text, '"lisen"')})`]);
  });

  it("suggests for a swapped pair of letters", () => {
    expect(errorsOf(`{ "stat_edir": "/x" }`)).toEqual(['stat_edir: unknown key (did you mean "state_dir"?) (1:3)']);
  });

  it("reports an unknown key without a suggestion when nothing is close", () => {
    expect(errorsOf(`{ "colour": "blue" }`)).toEqual(["colour: unknown key (1:3)"]);
  });

  it("reports nested unknown keys, one line each, with suggestions from the right union member", () => {
    const text = `{
  "auth": { "kind": "dev", "admin_user": ["ada"], "zzz": 1 },
  "spawner": { "kind": "local", "named_servers": { "limt": 2 } }
}`;
    expect(errorsOf(text)).toEqual([
      `auth.admin_user: unknown key (did you mean "admin_users"?) (${posOf(text, '"admin_user"')})`,
      `auth.zzz: unknown key (${posOf(text, '"zzz"')})`,
      `spawner.named_servers.limt: unknown key (did you mean "limit"?) (${posOf(text, '"limt"')})`,
    ]);
  });

  it("reports a wrong type at the value", () => {
    const text = `{\n  "session": { "idle_timeout_s": "1h" }\n}`;
    expect(errorsOf(text)).toEqual([`session.idle_timeout_s: expected number, got string (${posOf(text, '"1h"')})`]);
  });

  it("reports a fractional count as not a whole number", () => {
    const text = `{ "spawner": { "kind": "local", "named_servers": { "limit": 1.5 } } }`;
    expect(errorsOf(text)).toEqual([`spawner.named_servers.limit: must be a whole number (${posOf(text, "1.5")})`]);
  });

  it("reports a negative or zero timeout", () => {
    const text = `{\n  "spawner": { "kind": "local", "start_timeout_s": -5 },\n  "proxy": { "activity_flush_s": 0 }\n}`;
    expect(errorsOf(text)).toEqual([
      `spawner.start_timeout_s: must be greater than 0 (${posOf(text, "-5")})`,
      `proxy.activity_flush_s: must be greater than 0 (${posOf(text, "0 }")})`,
    ]);
  });

  it("reports a bad user name in a list with its index", () => {
    const text = `{
  "auth": {
    "kind": "dev",
    "admin_users": ["ada", "bob", "Carol"]
  }
}`;
    expect(errorsOf(text)).toEqual([
      `auth.admin_users.2: not a valid user name (lower-case letters, digits, '.', '_', '-'; at most 64) (${posOf(text, '"Carol"')})`,
    ]);
  });

  it("reports a wrong auth.kind as the list of kinds", () => {
    const text = `{ "auth": { "kind": "saml" } }`;
    expect(errorsOf(text)).toEqual([`auth.kind: must be one of "dev", "oidc" (${posOf(text, '"saml"')})`]);
  });

  it("reports a missing auth.kind at the auth object", () => {
    const text = `{ "auth": { "admin_users": [] } }`;
    expect(errorsOf(text)).toEqual([`auth.kind: missing, must be one of "dev", "oidc" (${posOf(text, '{ "admin')})`]);
  });

  it("reports a wrong spawner.kind as the list of kinds", () => {
    const text = `{ "spawner": { "kind": "docker" } }`;
    expect(errorsOf(text)).toEqual([`spawner.kind: must be one of "local", "systemd" (${posOf(text, '"docker"')})`]);
  });

  it("reports a bad enum value and a bad version", () => {
    const text = `{ "log_level": "verbose", "jupyterhub_version": "3.0" }`;
    expect(errorsOf(text)).toEqual([
      `log_level: must be one of "debug", "info", "warn", "error" (${posOf(text, '"verbose"')})`,
      `jupyterhub_version: not a version like "3.0.0" (${posOf(text, '"3.0"')})`,
    ]);
  });

  it("reports an invalid environment variable name at the key, and a non-string value at the value", () => {
    const text = `{ "spawner": { "kind": "local", "env": { "1X": "a", "B": 2 } } }`;
    expect(errorsOf(text)).toEqual([
      `spawner.env.1X: not a valid environment variable name (${posOf(text, '"1X"')})`,
      `spawner.env.B: expected string, got number (${posOf(text, "2 }")})`,
    ]);
  });

  it("reports an empty command and an empty state_dir", () => {
    const text = `{ "state_dir": "", "spawner": { "kind": "local", "cmd": [] } }`;
    expect(errorsOf(text)).toEqual([
      `state_dir: must not be empty (${posOf(text, '""')})`,
      `spawner.cmd: must have at least 1 item (${posOf(text, "[]")})`,
    ]);
  });

  it("reports a duplicate key, which JSON would otherwise resolve silently", () => {
    const text = `{\n  "log_level": "debug",\n  "log_level": "info"\n}`;
    expect(errorsOf(text)).toEqual(["log_level: duplicate key, first defined at 2:3 (3:3)"]);
  });

  it("collects every problem, in file order", () => {
    const text = `{
  "spawner": { "kind": "local", "stop_timeout_s": -1 },
  "lisen": "x",
  "auth": { "kind": "dev", "admin_users": ["OK"] },
  "log_level": 3
}`;
    expect(errorsOf(text).map((e) => e.slice(0, e.indexOf(":")))).toEqual([
      "spawner.stop_timeout_s",
      "lisen",
      "auth.admin_users.0",
      "log_level",
    ]);
  });
});

describe("parseConfigText: listen and public_url", () => {
  const listenErrors = (listen: string) => errorsOf(JSON.stringify({ listen }));

  it("accepts IPv4, IPv6 and localhost loopback addresses, and an explicit default port", () => {
    expect(configOf(`{ "listen": "http://[::1]:8000" }`).listen).toBe("http://[::1]:8000");
    expect(configOf(`{ "listen": "http://localhost:8000" }`).listen).toBe("http://localhost:8000");
    expect(configOf(`{ "listen": "http://127.0.0.1:80" }`).listen).toBe("http://127.0.0.1:80");
  });

  it("rejects something that is not a URL", () => {
    expect(listenErrors("127.0.0.1:8000 x")).toEqual(['listen: not a URL (expected e.g. "http://127.0.0.1:8000") (1:11)']);
  });

  it("accepts https only with a certificate (more in test/config/https.test.ts)", () => {
    expect(listenErrors("https://127.0.0.1:8443").map((e) => e.replace(/ \(\d+:\d+\)$/, ""))).toEqual([
      "tls.cert_file: listen is https://127.0.0.1:8443, so the certificate needs tls.cert_file and tls.key_file",
      "tls.key_file: listen is https://127.0.0.1:8443, so the certificate needs tls.cert_file and tls.key_file",
    ]);
  });

  it("rejects a missing port", () => {
    expect(listenErrors("http://127.0.0.1")).toEqual(["listen: needs an explicit port, e.g. http://127.0.0.1:8000 (1:11)"]);
    expect(listenErrors("http://[::1]/")).toEqual(["listen: needs an explicit port, e.g. http://127.0.0.1:8000 (1:11)"]);
  });

  it("rejects a path, query or fragment", () => {
    for (const listen of ["http://127.0.0.1:8000/hub", "http://127.0.0.1:8000/?a=1", "http://127.0.0.1:8000/#x"]) {
      expect(listenErrors(listen)).toEqual(["listen: must not have a path, query or fragment (1:11)"]);
    }
  });

  it("rejects a user name or password", () => {
    expect(listenErrors("http://admin:pw@127.0.0.1:8000")).toEqual(["listen: must not have a user name or password (1:11)"]);
  });

  it("reports every broken rule of one URL", () => {
    expect(listenErrors("ftp://127.0.0.1/x")).toHaveLength(3);
  });

  it("refuses dev login on a non-loopback address, even when other keys are wrong too", () => {
    const text = `{\n  "listen": "http://0.0.0.0:8000",\n  "log_level": "loud"\n}`;
    // auth is not in the file, so the error points at the whole document.
    expect(errorsOf(text)).toEqual([
      "auth.kind: dev login has no password, so it is only allowed when listen is a loopback address (127.0.0.1, [::1] or localhost) (1:1)",
      `log_level: must be one of "debug", "info", "warn", "error" (${posOf(text, '"loud"')})`,
    ]);
  });

  it("refuses dev login behind a public_url other machines can reach (a reverse proxy in front of loopback)", () => {
    const text = `{ "public_url": "https://hub.example.org" }`;
    expect(errorsOf(text)).toEqual([
      'auth.kind: dev login has no password, so it is not allowed when public_url (https://hub.example.org) is reachable from other machines; use "oidc" (1:1)',
    ]);
    expect(configOf(`{ "public_url": "https://localhost:8443" }`).public_url).toBe("https://localhost:8443");
  });

  it("refuses the local spawner with OIDC unless the admin says this is a single-user host", () => {
    const oidc = `"auth": { "kind": "oidc", "client_id": "x", "client_secret_file": "/s", "allowed_users": ["a@example.org"] }`;
    expect(errorsOf(`{ ${oidc} }`)[0]).toMatch(/^spawner\.kind: the local spawner runs every user's server as the hub's own Unix user/);
    expect(configOf(`{ ${oidc}, "spawner": { "kind": "local", "single_user_host": true } }`).spawner.kind).toBe("local");
    expect(configOf(`{ ${oidc}, "spawner": { "kind": "systemd" } }`).spawner.kind).toBe("systemd");
  });

  it("the config slicehub install writes is refused until its OIDC client_id is filled in, and never has dev login", async () => {
    const { starterConfig } = await import("../../main/install.js");
    const text = starterConfig({ configDir: "/etc/slicehub", unitDir: "/etc/systemd/system", user: "slicehub", stateDir: "/var/lib/slicehub" });
    // Pointed at the auth object, where the key goes.
    expect(errorsOf(text)).toEqual([`auth.client_id: missing (expected string) (${posOf(text, '{\n    "kind": "oidc"')})`]);
    const filled = text.replace('// "client_id"', '"client_id"');
    const config = configOf(filled);
    expect(config.auth.kind).toBe("oidc");
    expect(config.spawner.kind).toBe("systemd");
  });

  it("checks public_url", () => {
    const oidc = `"auth": { "kind": "oidc", "client_id": "x" }, "spawner": { "kind": "systemd" }`;
    expect(configOf(`{ ${oidc}, "public_url": "https://hub.example.org" }`).public_url).toBe("https://hub.example.org");
    expect(errorsOf(`{ "public_url": "hub.example.org" }`)).toEqual(['public_url: not a URL (expected e.g. "https://hub.example.org") (1:17)']);
    expect(errorsOf(`{ "public_url": "ftp://hub.example.org" }`)).toEqual(["public_url: must be http:// or https:// (1:17)"]);
    expect(errorsOf(`{ "public_url": "https://hub.example.org/hub" }`)).toEqual([
      "public_url: must not have a path, query or fragment (slicehub serves at /) (1:17)",
    ]);
  });
});

describe("state_dir", () => {
  it("resolves a relative state_dir against the config file's directory", () => {
    expect(parseConfigText(`{ "state_dir": "data/hub" }`, "c.json", "/etc/slicehub")).toMatchObject({
      ok: true,
      config: { state_dir: "/etc/slicehub/data/hub" },
    });
    expect(parseConfigText(`{}`, "c.json", "/srv/hub")).toMatchObject({ ok: true, config: { state_dir: "/srv/hub/.slicehub" } });
  });

  it("keeps an absolute state_dir", () => {
    expect(parseConfigText(`{ "state_dir": "/var/lib/slicehub" }`, "c.json", "/etc/slicehub")).toMatchObject({
      ok: true,
      config: { state_dir: "/var/lib/slicehub" },
    });
  });
});

describe("loadConfigFile", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-config-"));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("loads a file and resolves state_dir against its directory", () => {
    const path = join(dir, "config.json");
    writeFileSync(path, `{ "state_dir": "state" } // trailing comment\n`);
    expect(loadConfigFile(path)).toMatchObject({ ok: true, config: { state_dir: join(dir, "state") } });
  });

  it("names the file in syntax errors", () => {
    const path = join(dir, "broken.json");
    writeFileSync(path, `{ "a": }`);
    expect(loadConfigFile(path)).toEqual({ ok: false, errors: [`${path}: expected a value (1:8)`] });
  });

  it("reports a missing file", () => {
    const path = join(dir, "missing.json");
    expect(loadConfigFile(path)).toEqual({ ok: false, errors: [`${path}: cannot read: ENOENT no such file`] });
  });

  it("reports a directory given as the config path", () => {
    expect(loadConfigFile(dir)).toEqual({ ok: false, errors: [`${dir}: cannot read: EISDIR is a directory`] });
  });

  it("reports a path through a file", () => {
    const file = join(dir, "plain");
    writeFileSync(file, "");
    const path = join(file, "config.json");
    expect(loadConfigFile(path)).toEqual({ ok: false, errors: [`${path}: cannot read: ENOTDIR a parent of the path is not a directory`] });
  });

  // Root reads any file regardless of its mode, so permission errors can only be produced by a normal user.
  it.skipIf(process.getuid?.() === 0)("reports a file in an unreadable directory", () => {
    const locked = join(dir, "locked");
    mkdirSync(locked);
    writeFileSync(join(locked, "config.json"), "{}");
    chmodSync(locked, 0o000);
    try {
      const path = join(locked, "config.json");
      expect(loadConfigFile(path)).toEqual({ ok: false, errors: [`${path}: cannot read: EACCES permission denied`] });
    } finally {
      chmodSync(locked, 0o700);
    }
  });
});

describe("embeddedDefaultConfig", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("is the schema default with state_dir under cwd", () => {
    vi.spyOn(process, "getuid").mockReturnValue(1000);
    const config = embeddedDefaultConfig("/home/ada/project");
    expect(config.state_dir).toBe("/home/ada/project/.slicehub");
    expect(config.listen).toBe("http://127.0.0.1:8000");
    expect(config.auth.kind).toBe("dev");
    expect(config.spawner.args).toEqual([]);
  });

  it("adds --allow-root when running as root", () => {
    vi.spyOn(process, "getuid").mockReturnValue(0);
    const config = embeddedDefaultConfig("/root");
    expect(config.spawner.args).toEqual(["--allow-root"]);
    expect(config.spawner.cmd).toEqual(["jupyterhub-singleuser"]);
  });
});

describe("configJsonSchema", () => {
  it("describes the input shape, with listen and its default", () => {
    const schema = configJsonSchema() as { type: string; properties: Record<string, { default?: unknown; description?: string }> };
    expect(schema.type).toBe("object");
    expect(schema.properties.listen).toMatchObject({ type: "string", default: "http://127.0.0.1:8000" });
    expect(schema.properties.listen?.description).toMatch(/listener/);
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(["$schema", "listen", "public_url", "state_dir", "auth", "spawner", "session", "proxy", "http"]),
    );
  });
});

describe("docs/config.md", () => {
  it("has an example that is a valid config", () => {
    const doc = readFileSync(new URL("../../docs/config.md", import.meta.url), "utf8");
    const example = doc.slice(doc.indexOf("## Example")).match(/```jsonc\n([\s\S]*?)```/)?.[1];
    expect(example).toBeDefined();
    expect(parseConfigText(example!, "docs/config.md", "/etc/slicehub")).toMatchObject({ ok: true, config: { state_dir: "/var/lib/slicehub" } });
  });
});
