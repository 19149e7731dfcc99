// The OIDC client secret, read once at start-up while still root (the file or systemd credential may be
// root-only). The secret itself never goes into an error message or a log line.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { OidcAuthConfig } from "../src/config/schema.js";

const CREDENTIAL_NAME = "oidc-client-secret";

/** client_secret_file, else $CREDENTIALS_DIRECTORY/oidc-client-secret, else client_secret from a private config file. */
export function resolveClientSecret(cfg: OidcAuthConfig, configPath: string | undefined): string {
  if (cfg.client_secret_file) return readSecretFile(cfg.client_secret_file, "auth.client_secret_file");

  const credentials = process.env.CREDENTIALS_DIRECTORY;
  if (credentials && existsSync(join(credentials, CREDENTIAL_NAME))) {
    return readSecretFile(join(credentials, CREDENTIAL_NAME), `$CREDENTIALS_DIRECTORY/${CREDENTIAL_NAME}`);
  }

  if (cfg.client_secret !== undefined) {
    if (!configPath) throw new Error("auth.client_secret: an inline secret needs a config file (--config) whose permissions can be checked");
    const mode = statSync(configPath).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new Error(
        `auth.client_secret: the config file ${configPath} is readable by group or others (mode 0${mode.toString(8)}); put the secret in client_secret_file or chmod 600 ${configPath}`,
      );
    }
    return cfg.client_secret;
  }

  throw new Error(
    `auth: OIDC login needs the client secret: set auth.client_secret_file, or provide the systemd credential ${CREDENTIAL_NAME} (LoadCredential=), or set auth.client_secret in a config file of mode 0600`,
  );
}

function readSecretFile(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  // Editors and `echo` add a final newline that is not part of the secret.
  const secret = text.replace(/\r?\n$/, "");
  if (!secret.trim()) throw new Error(`${what}: ${path} is empty`);
  return secret;
}
