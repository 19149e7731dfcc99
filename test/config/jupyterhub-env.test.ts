// spawner.env and profiles' env: the admin's JUPYTERHUB_* settings reach the server, the hub's own names are
// refused when the config is loaded (check-config, start, reload) with the name and the reason, never dropped
// without a word; JUPYTERHUB_PUBLIC_URL / JUPYTERHUB_PUBLIC_HUB_URL are JupyterHub's values.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfigFile, parseConfigText } from "../../src/config/load.js";
import { ConfigWatcher } from "../../src/config/watch.js";
import type { Logger } from "../../src/log.js";
import { ADMIN_JUPYTERHUB_ENV, envKeyProblem, HUB_JUPYTERHUB_ENV } from "../../src/jupyterhub-env.js";
import { serverEnv } from "../../src/server-env.js";
import { CLI } from "../e2e/harness.js";
import { ALICE_SERVER_ENV_INPUT, config } from "../hub/fakes.js";

const run = promisify(execFile);

const input = ALICE_SERVER_ENV_INPUT;

const errorsOf = (text: string): string[] => {
  const r = parseConfigText(text, "config.json", "/tmp");
  return r.ok ? [] : r.errors;
};

describe("which JUPYTERHUB_* names the config may set", () => {
  it("accepts the admin's settings in spawner.env and a profile's env, and passes them to the server", () => {
    const cfg = config(`{
      "log_level": "error",
      "spawner": {
        "kind": "local",
        "env": { "JUPYTERHUB_ACTIVITY_INTERVAL": "60", "JUPYTERHUB_DEBUG": "1", "JUPYTERHUB_SINGLEUSER_APP": "notebook.notebookapp.NotebookApp", "MY_VAR": "x" },
        "profiles": [{ "name": "lab", "title": "Lab", "env": { "JUPYTERHUB_DEFAULT_URL": "/lab", "JUPYTERHUB_ROOT_DIR": "/srv/data", "JUPYTERHUB_DISABLE_USER_CONFIG": "1" } }]
      }
    }`);
    const env = serverEnv(cfg, { ...input, profile: cfg.spawner.profiles[0], hubEnv: { JUPYTERHUB_SINGLEUSER_APP: "from.the.hub", JUPYTERHUB_API_TOKEN: "hub-secret" } });
    expect(env).toMatchObject({
      JUPYTERHUB_ACTIVITY_INTERVAL: "60",
      JUPYTERHUB_DEBUG: "1",
      // The config wins over the hub's own environment (as JupyterHub's environment over env_keep).
      JUPYTERHUB_SINGLEUSER_APP: "notebook.notebookapp.NotebookApp",
      MY_VAR: "x",
      JUPYTERHUB_DEFAULT_URL: "/lab",
      JUPYTERHUB_ROOT_DIR: "/srv/data",
      JUPYTERHUB_DISABLE_USER_CONFIG: "1",
    });
    expect(env.JUPYTERHUB_API_TOKEN).toBeUndefined();
    for (const name of Object.keys(ADMIN_JUPYTERHUB_ENV)) expect(envKeyProblem(name), name).toBeUndefined();
  });

  it("refuses every hub-owned name in spawner.env, naming it and saying why, at its line", () => {
    const text = `{
  "log_level": "error",
  "spawner": {
    "kind": "local",
    "env": {
      "JUPYTERHUB_API_URL": "http://evil.example/hub/api",
      "JPY_API_TOKEN": "x",
      "OK": "1"
    }
  }
}`;
    expect(errorsOf(text)).toEqual([
      "spawner.env.JUPYTERHUB_API_URL: JUPYTERHUB_API_URL is set by the hub, not by config: where the server reaches the hub's API, set by the hub (6:29)",
      "spawner.env.JPY_API_TOKEN: JPY_API_TOKEN is set by the hub, not by config: the server's own API token, issued by the hub at each start (7:24)",
    ]);
    for (const name of Object.keys(HUB_JUPYTERHUB_ENV)) {
      const errors = errorsOf(`{ "spawner": { "kind": "local", "env": { "${name}": "x" } } }`);
      expect(errors, name).toHaveLength(1);
      expect(errors[0], name).toMatch(new RegExp(`^spawner\\.env\\.${name}: ${name} is set by the hub, not by config: `));
    }
  });

  it("refuses them in a profile's env too, and an unknown JUPYTERHUB_ name with the closest allowed one", () => {
    const errors = errorsOf(`{ "spawner": { "kind": "local", "profiles": [{ "name": "p", "title": "P", "env": { "JUPYTERHUB_OAUTH_SCOPES": "[]", "JUPYTERHUB_ACTIVITY_INTERVALL": "5", "JUPYTERHUB_WHATEVER": "1" } }] } }`);
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/^spawner\.profiles\.0\.env\.JUPYTERHUB_OAUTH_SCOPES: JUPYTERHUB_OAUTH_SCOPES is set by the hub, not by config: the scopes that grant access/);
    expect(errors[1]).toMatch(/^spawner\.profiles\.0\.env\.JUPYTERHUB_ACTIVITY_INTERVALL: JUPYTERHUB_ACTIVITY_INTERVALL is not a JupyterHub variable an admin may set \(did you mean JUPYTERHUB_ACTIVITY_INTERVAL\? allowed: /);
    expect(errors[2]).toMatch(/^spawner\.profiles\.0\.env\.JUPYTERHUB_WHATEVER: JUPYTERHUB_WHATEVER is not a JupyterHub variable an admin may set \(allowed: JUPYTERHUB_ACTIVITY_INTERVAL, /);
  });

  it("the systemd spawner's env is checked the same way", () => {
    expect(errorsOf(`{ "spawner": { "kind": "systemd", "env": { "JUPYTERHUB_USER": "root" } } }`)).toEqual([
      expect.stringMatching(/^spawner\.env\.JUPYTERHUB_USER: JUPYTERHUB_USER is set by the hub, not by config: the server's owner/),
    ]);
  });
});

describe("secret-looking names under the systemd spawner (its environment is a world-readable unit property)", () => {
  it("are refused at load in spawner.env and a profile's env, with where and why", () => {
    const errors = errorsOf(`{
  "spawner": {
    "kind": "systemd",
    "env": { "HF_TOKEN": "x", "PGPASSWORD": "x", "TOKENIZERS_PARALLELISM": "false", "PWD_HINT": "x" },
    "profiles": [{ "name": "p", "title": "P", "env": { "OPENAI_API_KEY": "x", "AWS_SECRET_ACCESS_KEY": "x", "MYSQL_PWD": "x" } }]
  }
}`);
    expect(errors.map((e) => e.slice(0, e.indexOf(":")))).toEqual([
      "spawner.env.HF_TOKEN",
      "spawner.env.PGPASSWORD",
      "spawner.profiles.0.env.OPENAI_API_KEY",
      "spawner.profiles.0.env.AWS_SECRET_ACCESS_KEY",
      "spawner.profiles.0.env.MYSQL_PWD",
    ]);
    expect(errors[0]).toMatch(/HF_TOKEN looks like a secret's name, and with the systemd spawner a server's environment is a unit property every local user can read \(systemctl show\)/);
  });

  it("pass with the local spawner (its environment goes to the child process only) and for ordinary names", () => {
    expect(errorsOf(`{ "spawner": { "kind": "local", "env": { "HF_TOKEN": "x" } } }`)).toEqual([]);
    expect(errorsOf(`{ "spawner": { "kind": "systemd", "env": { "TOKENIZERS_PARALLELISM": "false", "PWD_HINT": "x", "API_URL": "x" } } }`)).toEqual([]);
  });

  it("a hub-owned name is refused once, for being the hub's", () => {
    const errors = errorsOf(`{ "spawner": { "kind": "systemd", "env": { "JUPYTERHUB_API_TOKEN": "x" } } }`);
    expect(errors).toEqual([expect.stringMatching(/^spawner\.env\.JUPYTERHUB_API_TOKEN: JUPYTERHUB_API_TOKEN is set by the hub/)]);
  });
});

describe("JUPYTERHUB_DEFAULT_URL", () => {
  it("is spawner.default_url unless the config's environment sets it (a profile's env wins over spawner.env)", () => {
    const cfg = config(`{ "log_level": "error", "spawner": { "kind": "local", "default_url": "/tree", "env": { "JUPYTERHUB_DEFAULT_URL": "/lab" }, "profiles": [{ "name": "a", "title": "A" }, { "name": "b", "title": "B", "env": { "JUPYTERHUB_DEFAULT_URL": "/voila" } }] } }`);
    expect(serverEnv(cfg, { ...input, profile: cfg.spawner.profiles[0] }).JUPYTERHUB_DEFAULT_URL).toBe("/lab");
    expect(serverEnv(cfg, { ...input, profile: cfg.spawner.profiles[1] }).JUPYTERHUB_DEFAULT_URL).toBe("/voila");
    const plain = config(`{ "log_level": "error", "spawner": { "kind": "local", "default_url": "/tree" } }`);
    expect(serverEnv(plain, input).JUPYTERHUB_DEFAULT_URL).toBe("/tree");
    expect(serverEnv(config(`{ "log_level": "error" }`), input).JUPYTERHUB_DEFAULT_URL).toBeUndefined();
  });
});

describe("JUPYTERHUB_PUBLIC_URL and JUPYTERHUB_PUBLIC_HUB_URL, as JupyterHub's get_env sets them", () => {
  it("are always set: empty without a public_url", () => {
    const env = serverEnv(config(`{ "log_level": "error" }`), input);
    expect(env.JUPYTERHUB_PUBLIC_URL).toBe("");
    expect(env.JUPYTERHUB_PUBLIC_HUB_URL).toBe("");
  });

  it("path mode: the server's prefix and /hub/ on public_url's origin, named servers under their own prefix", () => {
    const cfg = config(`{ "log_level": "error", "public_url": "https://hub.example.org:8443", "listen": "http://127.0.0.1:8000", "auth": { "kind": "oidc", "issuer": "https://accounts.google.com", "client_id": "x", "client_secret_file": "/dev/null" }, "spawner": { "kind": "systemd" } }`);
    expect(serverEnv(cfg, input)).toMatchObject({ JUPYTERHUB_PUBLIC_URL: "https://hub.example.org:8443/user/alice/", JUPYTERHUB_PUBLIC_HUB_URL: "https://hub.example.org:8443/hub/" });
    const named = serverEnv(cfg, { ...input, user: "a.b@x", server: "my-lab", serviceUrl: "http://127.0.0.1:5000/user/a.b@x/my-lab/" });
    expect(named.JUPYTERHUB_PUBLIC_URL).toBe("https://hub.example.org:8443/user/a.b@x/my-lab/");
  });

  it("subdomain mode: the server's own origin, the hub's /hub/ on public_url", () => {
    const cfg = config(`{ "log_level": "error", "public_url": "http://hub.localhost:8000", "subdomain_host": "http://users.localhost:8000", "spawner": { "kind": "local", "named_servers": { "limit": 1 } } }`);
    const env = serverEnv(cfg, { ...input, server: "lab", serviceUrl: "http://127.0.0.1:5000/user/alice/lab/" });
    expect(env.JUPYTERHUB_PUBLIC_URL).toBe("http://lab--alice.users.localhost:8000/user/alice/lab/");
    expect(env.JUPYTERHUB_PUBLIC_HUB_URL).toBe("http://hub.localhost:8000/hub/");
  });
});

describe("slicehub check-config", () => {
  const dir = mkdtempSync(join(tmpdir(), "slicehub-envcheck-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("prints each refused name with its reason and exits 1; the admin's names pass", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, `{\n  "spawner": {\n    "kind": "local", "env": { "JUPYTERHUB_API_TOKEN": "x", "JUPYTERHUB_ACTIVITY_INTERVAL": "30" }\n  }\n}\n`);
    const failed = await run(process.execPath, [CLI, "check-config", bad]).then(
      () => undefined,
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stdout).toBe("spawner.env.JUPYTERHUB_API_TOKEN: JUPYTERHUB_API_TOKEN is set by the hub, not by config: the server's own API token, issued by the hub at each start (3:55)\n");
    expect(failed?.stderr).toBe("1 problem found\n");
    const good = join(dir, "good.json");
    writeFileSync(good, `{ "spawner": { "kind": "local", "env": { "JUPYTERHUB_ACTIVITY_INTERVAL": "30", "JUPYTERHUB_SINGLEUSER_EXTENSION": "0" } } }\n`);
    const ok = await run(process.execPath, [CLI, "check-config", good]);
    expect(ok.stdout).toBe(`${good}: ok\n`);
  });
});

describe("a config reload", () => {
  it("with a hub-owned name in spawner.env is refused, logged with the name and why, and the running config kept", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slicehub-envreload-"));
    const path = join(dir, "config.json");
    writeFileSync(path, `{ "log_level": "info", "spawner": { "kind": "local" } }`);
    const initial = loadConfigFile(path);
    if (!initial.ok) throw new Error(initial.errors.join("\n"));
    const warnings: { msg: string; fields: Record<string, unknown> }[] = [];
    const noop = () => undefined;
    const logger: Logger = { debug: noop, info: noop, error: noop, warn: (msg, fields = {}) => void warnings.push({ msg, fields }), child: () => logger };
    let changed = 0;
    const watcher = new ConfigWatcher(path, initial.config, () => void changed++, logger);
    watcher.start();
    try {
      writeFileSync(path, `{ "log_level": "info", "spawner": { "kind": "local", "env": { "JUPYTERHUB_SERVICE_PREFIX": "/user/bob/" } } }`);
      for (let i = 0; i < 250 && !warnings.length; i++) await new Promise((r) => setTimeout(r, 20));
      expect(warnings[0]?.msg).toBe("config rejected, keeping the last good config");
      expect(warnings[0]?.fields.errors).toEqual([
        "spawner.env.JUPYTERHUB_SERVICE_PREFIX: JUPYTERHUB_SERVICE_PREFIX is set by the hub, not by config: the server's URL prefix, which the hub routes (1:92)",
      ]);
      expect(changed).toBe(0);
      expect(watcher.current).toBe(initial.config);
    } finally {
      watcher.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
