// Where the OIDC client secret may come from, and where it may not.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveClientSecret } from "../../auth/secret.js";
import { OidcAuthSchema } from "../../src/config/schema.js";

const cfg = (over: Record<string, unknown>) => OidcAuthSchema.parse({ kind: "oidc", client_id: "hub", ...over });

describe("resolveClientSecret", () => {
  let dir: string;
  let configPath: string;
  const savedCredentials = process.env.CREDENTIALS_DIRECTORY;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-secret-"));
    configPath = join(dir, "config.json");
    writeFileSync(configPath, "{}", { mode: 0o600 });
    delete process.env.CREDENTIALS_DIRECTORY;
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    if (savedCredentials === undefined) delete process.env.CREDENTIALS_DIRECTORY;
    else process.env.CREDENTIALS_DIRECTORY = savedCredentials;
  });

  it("reads client_secret_file without its final newline", () => {
    writeFileSync(join(dir, "secret"), "s3cret\n");
    expect(resolveClientSecret(cfg({ client_secret_file: join(dir, "secret"), client_secret: "inline" }), configPath)).toBe("s3cret");
  });

  it("refuses a missing or empty client_secret_file", () => {
    expect(() => resolveClientSecret(cfg({ client_secret_file: join(dir, "nope") }), configPath)).toThrow(/auth.client_secret_file: cannot read .*ENOENT/);
    writeFileSync(join(dir, "empty"), "\n");
    expect(() => resolveClientSecret(cfg({ client_secret_file: join(dir, "empty") }), configPath)).toThrow(/is empty/);
  });

  it("reads the systemd credential before an inline secret", () => {
    writeFileSync(join(dir, "oidc-client-secret"), "from-systemd");
    process.env.CREDENTIALS_DIRECTORY = dir;
    expect(resolveClientSecret(cfg({ client_secret: "inline" }), configPath)).toBe("from-systemd");
  });

  it("accepts an inline secret only from a config file of mode 0600", () => {
    expect(resolveClientSecret(cfg({ client_secret: "inline" }), configPath)).toBe("inline");
    chmodSync(configPath, 0o640);
    let message = "";
    try {
      resolveClientSecret(cfg({ client_secret: "inline" }), configPath);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/auth.client_secret: the config file .* is readable by group or others \(mode 0640\); put the secret in client_secret_file or chmod 600/);
    expect(message).not.toContain("inline");
  });

  it("says where to put the secret when there is none", () => {
    expect(() => resolveClientSecret(cfg({}), configPath)).toThrow(/client_secret_file/);
  });
});
