// subdomain_host (per-user origins): its shape, how it must agree with public_url, dev login on *.localhost, and
// that a reload cannot switch it (or, while it is on, public_url) under running servers.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configJsonSchema, loadConfigFile, parseConfigText } from "../../src/config/load.js";
import { isLoopbackHost, type Config } from "../../src/config/schema.js";
import { ConfigWatcher } from "../../src/config/watch.js";
import type { Logger } from "../../src/log.js";

function errorsOf(text: string): string[] {
  const result = parseConfigText(text, "config.json", "/etc/slicehub");
  if (result.ok) throw new Error("expected the config to be rejected");
  // Without the line:col (load.test.ts covers positions): these read as the messages an admin sees.
  return result.errors.map((e) => e.replace(/ \(\d+:\d+\)$/, ""));
}

function configOf(text: string) {
  const result = parseConfigText(text, "config.json", "/etc/slicehub");
  if (!result.ok) throw new Error(`expected the config to be accepted: ${result.errors.join("\n")}`);
  return result.config;
}

const oidc = `"auth": { "kind": "oidc", "client_id": "x" }, "spawner": { "kind": "systemd" }`;
const cfg = (fields: Record<string, string>) => `{ ${oidc}, ${Object.entries(fields).map(([k, v]) => `"${k}": "${v}"`).join(", ")} }`;

describe("subdomain_host", () => {
  it("accepts a separate users' host, the hub's own host (JupyterHub's shape), and a port", () => {
    expect(configOf(cfg({ public_url: "https://hub.example.org", subdomain_host: "https://users.example.org" })).subdomain_host).toBe("https://users.example.org");
    expect(configOf(cfg({ public_url: "https://hub.example.org", subdomain_host: "https://hub.example.org" })).subdomain_host).toBe("https://hub.example.org");
    expect(configOf(cfg({ public_url: "https://example.org", subdomain_host: "https://users.example.org" })).subdomain_host).toBe("https://users.example.org");
    expect(configOf(cfg({ public_url: "http://hub.example.org:8000", subdomain_host: "http://users.example.org:8000" })).subdomain_host).toBe(
      "http://users.example.org:8000",
    );
    expect(configOf(`{ ${oidc} }`).subdomain_host).toBeUndefined();
  });

  it("requires public_url, with the same scheme", () => {
    expect(errorsOf(cfg({ subdomain_host: "https://users.example.org" }))).toEqual([
      'subdomain_host: needs public_url: the hub\'s own address, which servers link back to and which must differ from their host names (e.g. "https://hub.example.org")',
    ]);
    expect(errorsOf(cfg({ public_url: "https://hub.example.org", subdomain_host: "http://users.example.org" }))).toEqual([
      "subdomain_host: must use the same scheme as public_url (https://), not http://",
    ]);
  });

  it("refuses a hub host under subdomain_host, where it would be some user's server host", () => {
    expect(errorsOf(cfg({ public_url: "https://www.users.example.org", subdomain_host: "https://users.example.org" }))).toEqual([
      "subdomain_host: public_url's host www.users.example.org is under users.example.org, where users' servers get their host names; put the hub on users.example.org itself or outside it",
    ]);
  });

  it("says exactly what is wrong with a malformed value", () => {
    const one = (v: string) => errorsOf(cfg({ public_url: "https://hub.example.org", subdomain_host: v }));
    expect(one("users.example.org")).toEqual(['subdomain_host: not a URL (expected e.g. "https://users.example.org")']);
    expect(one("ftp://users.example.org")).toEqual([
      "subdomain_host: must be http:// or https://",
    ]);
    expect(one("https://users.example.org/jupyter")).toEqual([
      "subdomain_host: must not have a path, query or fragment (servers are at /user/<name>/ on their own host)",
    ]);
    expect(one("https://users.example.org/?a=1")).toHaveLength(1);
    expect(one("https://a:b@users.example.org")).toEqual(["subdomain_host: must not have a user name or password"]);
    expect(one("https://10.0.0.1")).toEqual(["subdomain_host: needs a DNS name, not an IP address (10.0.0.1): servers get host names under it"]);
    expect(one("https://[::1]:8000")).toEqual(["subdomain_host: needs a DNS name, not an IP address ([::1]): servers get host names under it"]);
    expect(one("https://users_x.example.org")).toEqual(["subdomain_host: users_x.example.org is not a DNS name (labels of letters, digits and '-')"]);
    expect(one(`https://${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.${"d".repeat(5)}.org`)).toEqual([
      "subdomain_host: host name too long (at most 189 characters, leaving room for a 63-character server label)",
    ]);
  });

  it("is documented in the JSON Schema", () => {
    const schema = configJsonSchema() as { properties: Record<string, { description?: string }> };
    expect(schema.properties.subdomain_host?.description).toMatch(/wildcard DNS/);
  });
});

describe("dev login and *.localhost", () => {
  it("treats *.localhost as loopback (RFC 6761), and nothing that merely contains it", () => {
    expect(isLoopbackHost("hub.localhost")).toBe(true);
    expect(isLoopbackHost("alice.users.localhost")).toBe(true);
    expect(isLoopbackHost("localhost.example.org")).toBe(false);
    expect(isLoopbackHost("evillocalhost")).toBe(false);
    expect(isLoopbackHost("example.org")).toBe(false);
  });

  it("allows dev login with hub.localhost and users.localhost, refuses it with a public subdomain_host", () => {
    const ok = configOf(`{ "public_url": "http://hub.localhost:8000", "subdomain_host": "http://users.localhost:8000" }`);
    expect(ok.auth.kind).toBe("dev");
    expect(errorsOf(`{ "public_url": "http://hub.localhost:8000", "subdomain_host": "http://users.example.org:8000" }`)).toEqual([
      'auth.kind: dev login has no password, so it is not allowed when subdomain_host (http://users.example.org:8000) is reachable from other machines; use a *.localhost name or "oidc"',
    ]);
  });
});

describe("reloading", () => {
  const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

  function reloadWith(first: string, second: string): { next: Config | undefined } {
    const dir = mkdtempSync(join(tmpdir(), "slicehub-subdomain-"));
    try {
      const path = join(dir, "config.json");
      writeFileSync(path, first);
      const initial = loadConfigFile(path);
      if (!initial.ok) throw new Error(initial.errors.join("\n"));
      const out: { next: Config | undefined } = { next: undefined };
      const watcher = new ConfigWatcher(path, initial.config, (next) => (out.next = next), silent);
      writeFileSync(path, second);
      expect(watcher.reload()).toBe(true);
      return out;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it("keeps subdomain_host, and public_url with it, until a restart; other keys apply", () => {
    const on = `{ "public_url": "http://hub.localhost:8000", "subdomain_host": "http://users.localhost:8000", "log_level": "info" }`;
    const off = `{ "public_url": "http://localhost:8000", "log_level": "debug" }`;
    const turnedOff = reloadWith(on, off).next!;
    expect(turnedOff.subdomain_host).toBe("http://users.localhost:8000");
    expect(turnedOff.public_url).toBe("http://hub.localhost:8000");
    expect(turnedOff.log_level).toBe("debug");
    const turnedOn = reloadWith(off.replace("debug", "info"), on.replace("info", "debug")).next!;
    expect(turnedOn.subdomain_host).toBeUndefined();
    expect(turnedOn.public_url).toBe("http://localhost:8000");
    expect(turnedOn.log_level).toBe("debug");
  });

  it("still reloads public_url in path mode", () => {
    const next = reloadWith(`{ "public_url": "http://localhost:8000" }`, `{ "public_url": "http://localhost:9000" }`).next!;
    expect(next.public_url).toBe("http://localhost:9000");
  });
});
