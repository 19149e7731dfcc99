// Imported users' first login through a real OpenID provider: `slicehub import jupyterhub` (the command, into
// the running daemon) records each user's email; the first verified login with it takes the imported user and
// its named server; another account with the same email, or another address with the same local part, is
// refused; someone not imported logs in as before.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, CLI, type HubProcess } from "../e2e/harness.js";
import { makeJhDb } from "../import/jh-fixtures.js";
import { loginAs } from "./follow.js";
import { startHubWithIdp } from "./hub-with-idp.js";

const cli = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });

describe("an imported user's first OIDC login", () => {
  let hub: HubProcess;
  let cleanup: () => Promise<void>;
  let dir: string;

  beforeAll(async () => {
    ({ hub, cleanup } = await startHubWithIdp());
    dir = mkdtempSync(join(tmpdir(), "slicehub-oidc-import-"));
    const file = join(dir, "jupyterhub.sqlite");
    // ada and guest as JupyterHub with GoogleOAuthenticator names them: by email. guest's address is at
    // example.com; the provider's guest account is guest@other.org (same local part, another person).
    makeJhDb(file, "4", [{ name: "ada@example.com", groups: ["lab"], servers: ["", "research"] }, { name: "guest@example.com" }]);
    const r = await cli(["import", "jupyterhub", file, "--config", hub.configPath]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^done: created 2, /m);
  });
  afterAll(async () => {
    await cleanup?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the person with the recorded, verified email gets the imported user and its named server", async () => {
    const b = new Browser(hub.url);
    expect((await loginAs(b, "ada")).url.pathname).toBe("/hub/home");
    const me = (await (await b.request("/hub/api/user", { headers: { "x-xsrftoken": await b.csrf() } })).json()) as { name: string };
    expect(me.name).toBe("ada");
    const home = await (await b.request("/hub/home")).text();
    expect(home).toContain("research");
    await hub.waitForLog(/"msg":"user logged in".*"user":"ada"/);
  });

  it("another account at the provider with the same email is refused once ada has taken it", async () => {
    const { url } = await loginAs(new Browser(hub.url), "impostor");
    expect(url.pathname + url.search).toBe("/hub/login?error=subject_collision");
  });

  it("another address with the imported user's local part is refused, and the log says why", async () => {
    const { url } = await loginAs(new Browser(hub.url), "guest");
    expect(url.pathname + url.search).toBe("/hub/login?error=subject_collision");
    await hub.waitForLog(/"msg":"login refused".*imported from JupyterHub 4\.x .* for another email address/);
  });

  it("someone who was not imported logs in as before", async () => {
    expect((await loginAs(new Browser(hub.url), "grace")).url.pathname).toBe("/hub/home");
  });
});
