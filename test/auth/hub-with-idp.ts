// The OIDC e2e fixture: a test IdP with a table of accounts, and the real daemon logging in through it with
// allow-lists that give each account a different fate.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HubProcess } from "../e2e/harness.js";
import { startIdp, type Idp, type IdpAccount } from "./idp.js";

export const CLIENT_ID = "slicehub-test";
export const CLIENT_SECRET = randomBytes(24).toString("hex");

const ACCOUNTS: Record<string, IdpAccount> = {
  ada: { sub: "sub-ada", email: "ada@example.com", email_verified: true, name: "Ada" },
  boss: { sub: "sub-boss", email: "Boss@Example.com", email_verified: true },
  guest: { sub: "sub-guest", email: "guest@other.org", email_verified: true },
  grace: { sub: "sub-grace", email: "grace@example.com", email_verified: true },
  hopper: { sub: "sub-hopper", email: "hopper@example.com", email_verified: true },
  linus: { sub: "sub-linus", email: "linus@example.com", email_verified: true },
  unverified: { sub: "sub-unverified", email: "una@example.com", email_verified: false },
  stringly: { sub: "sub-stringly", email: "sam@example.com", email_verified: "true" },
  spoof: { sub: "sub-spoof", email: "eve@evil-example.com", email_verified: true, hd: "example.com" },
  blocked: { sub: "sub-mallory", email: "mallory@example.com", email_verified: true },
  stranger: { sub: "sub-stranger", email: "stranger@other.org", email_verified: true },
  // Same email as ada (so the same user name), but another account at the provider.
  impostor: { sub: "sub-ada-2", email: "ada@example.com", email_verified: true },
};

function oidcConfig(issuer: string, secretFile: string): Record<string, unknown> {
  return {
    auth: {
      kind: "oidc",
      issuer,
      client_id: CLIENT_ID,
      client_secret_file: secretFile,
      allowed_domains: ["example.com"],
      allowed_users: ["guest@other.org"],
      admin_users: ["boss@example.com"],
      blocked_users: ["mallory@example.com"],
    },
    // The tests run servers with the local spawner, which OIDC login allows only on a host everyone trusts.
    spawner: { single_user_host: true },
  };
}

/**
 * Starts the IdP, then the hub (whose port the IdP's redirect URI needs), with the secret in a 0600 file.
 * With registerHub false the IdP answers 503 until the test calls idp.setRedirectUri.
 */
export async function startHubWithIdp(opts: { defaultAccount?: string; registerHub?: boolean } = {}): Promise<{ idp: Idp; hub: HubProcess; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "slicehub-oidc-"));
  const secretFile = join(dir, "client-secret");
  writeFileSync(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
  const idp = await startIdp({ accounts: ACCOUNTS, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, defaultAccount: opts.defaultAccount });
  // The harness passes its own environment to the daemon; this lets the hub talk plain http to the local IdP.
  process.env.SLICEHUB_TEST_INSECURE_OIDC = "1";
  const hub = await HubProcess.start({ config: oidcConfig(idp.issuer, secretFile) });
  if (opts.registerHub !== false) idp.setRedirectUri(`${hub.url}/hub/oauth_callback`);
  return {
    idp,
    hub,
    cleanup: async () => {
      await hub.destroy();
      await idp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
