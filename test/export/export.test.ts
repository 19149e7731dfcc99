// What `slicehub export z2jh` writes for each kind of setting, and what it must never write.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfigText } from "../../src/config/load.js";
import { ConfigSchema } from "../../src/config/schema.js";
import { ExportError, kubeSpawnerBytes, parseImage } from "../../src/z2jh/export.js";
import { LOGIN_PY, PROFILES_PY } from "../../src/z2jh/python.js";
import { exportOf, getPath, loadFixture, REPO, schemaErrors, type JsonMap } from "./helpers.js";

const fixture = (name: string) => loadFixture(join(import.meta.dirname, "fixtures", name));
const example = (name: string) => loadFixture(join(REPO, "examples", name));
const oidc = (auth: object = {}, rest: object = {}) => ConfigSchema.parse({ public_url: "https://hub.example.org", auth: { kind: "oidc", client_id: "id", ...auth }, spawner: { kind: "systemd" }, ...rest });

/** The text with wrapped comment lines joined again, for looking up sentences. */
const flat = (text: string) => text.replace(/\n#\s+/g, " ");

const tmp = mkdtempSync(join(tmpdir(), "slicehub-export-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the OAuth client secret (attacker's view: it must never reach the values)", () => {
  it("an inline client_secret is not copied anywhere: values, comments or warnings", () => {
    const r = exportOf(fixture("inline-secret.json"));
    const everything = `${r.text}\n${JSON.stringify(r.values)}\n${r.warnings.join("\n")}`;
    expect(everything).not.toContain("INLINE-SECRET-VALUE-4b7d9e");
    for (let i = 0; i + 12 <= "INLINE-SECRET-VALUE-4b7d9e".length; i++) expect(everything).not.toContain("INLINE-SECRET-VALUE-4b7d9e".slice(i, i + 12));
    expect(r.text).toContain("write it to a file readable only by you first");
  });

  it("a client_secret_file is referenced by path, never read", () => {
    const secretFile = join(tmp, "oidc-client-secret");
    writeFileSync(secretFile, "FILE-SECRET-VALUE-93c1\n", { mode: 0o600 });
    const r = exportOf(oidc({ client_secret_file: secretFile }));
    expect(r.text).not.toContain("FILE-SECRET-VALUE-93c1");
    expect(r.text).toContain(`--from-file=client-secret=<(tr -d '\\r\\n' < ${secretFile})`);
  });

  it("the hub reads it from a Secret through OAUTH_CLIENT_SECRET, in the form the chart's extraEnv takes", () => {
    const v = exportOf(oidc(), { secretName: "my-oauth" }).values;
    expect(getPath(v, "hub.extraEnv")).toEqual({ OAUTH_CLIENT_SECRET: { valueFrom: { secretKeyRef: { name: "my-oauth", key: "client-secret" } } } });
    expect(JSON.stringify(v)).not.toMatch(/client_secret"/);
  });
});

describe("config text cannot inject YAML or Python", () => {
  it("newlines, comment marks and keys in titles and emails stay data", () => {
    const evil = 'x"\nhub:\n  extraConfig:\n    evil.py: import os  # \n';
    const cfg = ConfigSchema.parse({
      auth: { kind: "oidc", client_id: evil, allowed_users: ["a@example.org"] },
      spawner: { kind: "systemd", env: { X: evil }, profiles: [{ name: "p", title: evil, description: evil }] },
    });
    const r = exportOf(cfg);
    const back = parse(r.text) as JsonMap;
    expect(back).toEqual(r.values);
    expect(getPath(back, "singleuser.profileList")).toEqual([expect.objectContaining({ display_name: evil, description: evil })]);
    expect(Object.keys(getPath(back, "hub.extraConfig") as object)).toEqual(["slicehub-login.py"]);
    // The Python is constant text; the config only reaches it as data under custom.slicehub.
    expect((getPath(back, "hub.extraConfig") as JsonMap)["slicehub-login.py"]).toBe(LOGIN_PY);
  });
});

describe("login", () => {
  it("Google: GoogleOAuthenticator with the callback, scopes and names", () => {
    const r = exportOf(example("google-minimal.json"));
    expect(getPath(r.values, "hub.config.JupyterHub.authenticator_class")).toBe("google");
    expect(getPath(r.values, "hub.config.GoogleOAuthenticator")).toEqual({
      client_id: "5678-xyz.apps.googleusercontent.com",
      oauth_callback_url: "https://notebooks.example.com/hub/oauth_callback",
      scope: ["openid", "email", "profile"],
      admin_users: ["ada"],
      allowed_users: ["ada", "grace"],
    });
    expect(getPath(r.values, "custom.slicehub.login")).toEqual({
      google: true,
      username: "email_local",
      allowed_users: ["ada@example.com", "grace@example.com"],
      admin_users: ["ada@example.com"],
      blocked_users: [],
      allowed_domains: [],
    });
  });

  it("allowed domains: allow_all with the login check; names as slicehub makes them; colliding names warned", () => {
    const lab = exportOf(example("google-lab.json")).values;
    expect(getPath(lab, "hub.config.GoogleOAuthenticator.allow_all")).toBe(true);
    expect(getPath(lab, "hub.config.GoogleOAuthenticator.allowed_users")).toBeUndefined();
    expect(getPath(lab, "hub.config.GoogleOAuthenticator.blocked_users")).toEqual(["former.student"]);

    const edge = exportOf(fixture("edge-values.json"));
    expect(getPath(edge.values, "hub.config.GoogleOAuthenticator.allowed_users")).toEqual(["bob", "jose.garcia-lab", "root"]);
    expect(getPath(edge.values, "hub.config.GoogleOAuthenticator.admin_users")).toEqual(["root"]);
    // bob@three.example is blocked by email, but the name bob is also an allowed person's: only eve is blocked by name.
    expect(getPath(edge.values, "hub.config.GoogleOAuthenticator.blocked_users")).toEqual(["eve"]);
    expect(edge.warnings.join("\n")).toMatch(/bob@one\.example and bob@two\.example and bob@three\.example all get the user name "bob"/);
  });

  it('username "email" gives name-at-domain names; a claim leaves names to the login check', () => {
    const email = exportOf(oidc({ username: "email", allowed_users: ["Ada@Example.org"] })).values;
    expect(getPath(email, "hub.config.GoogleOAuthenticator.allowed_users")).toEqual(["ada-at-example.org"]);
    const claim = exportOf(example("generic-oidc-groups.json"), { discovery: { ok: false, reason: "test" } });
    expect(getPath(claim.values, "hub.config.GenericOAuthenticator.allow_all")).toBe(true);
    expect(getPath(claim.values, "hub.config.GenericOAuthenticator.admin_users")).toBeUndefined();
    expect(getPath(claim.values, "custom.slicehub.login.username")).toEqual({ claim: "preferred_username" });
    expect(claim.text).toContain('User names come from the claim "preferred_username"');
  });

  it("another issuer: GenericOAuthenticator with the discovery document's endpoints", () => {
    const cfg = example("generic-oidc-groups.json");
    const r = exportOf(cfg, {
      discovery: { ok: true, endpoints: { authorization_endpoint: "https://login.uni.example/a", token_endpoint: "https://login.uni.example/t", userinfo_endpoint: "https://login.uni.example/u" } },
    });
    expect(getPath(r.values, "hub.config.JupyterHub.authenticator_class")).toBe("generic-oauth");
    expect(getPath(r.values, "hub.config.GenericOAuthenticator")).toMatchObject({
      authorize_url: "https://login.uni.example/a",
      token_url: "https://login.uni.example/t",
      userdata_url: "https://login.uni.example/u",
      login_service: "login.uni.example",
    });
    expect(r.warnings.join()).not.toMatch(/guesses/);
    const noUserinfo = exportOf(cfg, { discovery: { ok: true, endpoints: { authorization_endpoint: "https://a.example/a", token_endpoint: "https://a.example/t" } } });
    expect(getPath(noUserinfo.values, "hub.config.GenericOAuthenticator.userdata_from_id_token")).toBe(true);
    expect(schemaErrors(noUserinfo.values as JsonMap)).toEqual([]);
  });

  it("without the discovery document: guesses, marked in the file and warned about", () => {
    const r = exportOf(example("generic-oidc-groups.json"), { discovery: { ok: false, reason: "ENOTFOUND" } });
    expect(getPath(r.values, "hub.config.GenericOAuthenticator.authorize_url")).toBe("https://login.uni.example/realms/research/authorize");
    expect(r.text).toContain("CHECK THESE THREE URLS");
    expect(r.text).toContain("ENOTFOUND");
    expect(r.warnings.join()).toMatch(/guesses/);
    expect(exportOf(example("generic-oidc-groups.json")).text).toContain("--offline");
  });

  it("no public_url: the callback is marked CHANGE THIS", () => {
    const r = exportOf(fixture("edge-values.json"));
    expect(r.text).toMatch(/# CHANGE THIS: public_url is not set/);
    expect(r.warnings.join()).toMatch(/public_url is not set/);
  });

  it("the development login is refused, or with --allow-dev the dummy authenticator with a warning", () => {
    expect(() => exportOf(fixture("dev.json"))).toThrow(ExportError);
    expect(() => exportOf(fixture("dev.json"))).toThrow(/--allow-dev/);
    const r = exportOf(fixture("dev.json"), { allowDev: true });
    expect(getPath(r.values, "hub.config.JupyterHub.authenticator_class")).toBe("dummy");
    expect(getPath(r.values, "hub.config.Authenticator")).toEqual({ admin_users: ["ada"], allowed_users: ["ada", "grace"] });
    expect(r.text).toContain("WARNING (--allow-dev)");
    expect(r.warnings.join()).toMatch(/dummy authenticator/);
    expect(getPath(exportOf(fixture("dev-open.json"), { allowDev: true }).values, "hub.config.Authenticator.allow_all")).toBe(true);
  });
});

describe("servers", () => {
  const edge = exportOf(fixture("edge-values.json"));

  it("environment values are literal for Kubernetes ($( escaped) and YAML 1.1 (\"on\" quoted)", () => {
    expect(getPath(edge.values, "singleuser.extraEnv")).toEqual({ GREETING: "hello $$(USER)", PLAIN: "on" });
    expect(edge.text).toContain('PLAIN: "on"');
  });

  it("profiles: limits, guarantees by the ratios, cmd/args/env overrides, the first the default", () => {
    const list = getPath(edge.values, "singleuser.profileList") as JsonMap[];
    expect(list.map((p) => [p.slug, p.default])).toEqual([["bytes", true], ["frac", undefined], ["nolimits", undefined]]);
    expect(list[0]!.kubespawner_override).toEqual({ mem_limit: 1073741824, mem_guarantee: 1073741824, cpu_limit: 0.25, cpu_guarantee: 0.025 });
    expect(list[1]!.kubespawner_override).toEqual({
      mem_limit: "1.5G",
      mem_guarantee: "1.5G",
      cmd: ["start.sh"],
      args: [],
      environment: { GREETING: "hi", PLAIN: "on", EXTRA: "1" },
    });
    expect(list[2]!.kubespawner_override).toBeUndefined();
    const half = exportOf(fixture("edge-values.json"), { memoryGuaranteeRatio: 0.5, cpuGuaranteeRatio: 1 }).values;
    expect((getPath(half, "singleuser.profileList") as JsonMap[])[1]!.kubespawner_override).toMatchObject({ mem_limit: "1.5G", mem_guarantee: "768M" });
    expect((getPath(half, "singleuser.profileList") as JsonMap[])[0]!.kubespawner_override).toMatchObject({ cpu_guarantee: 0.25 });
  });

  it("sizes: the same strings KubeSpawner reads as powers of 1024, bytes as numbers", () => {
    expect(kubeSpawnerBytes("2G")).toBe("2G");
    expect(kubeSpawnerBytes("512")).toBe(512);
    expect(kubeSpawnerBytes("2G", 0.25)).toBe("512M");
    expect(kubeSpawnerBytes("1K", 0.001)).toBe("1M");
  });

  it("restricted profiles: the access data and the profile_list function", () => {
    expect(getPath(edge.values, "custom.slicehub.profile_access")).toEqual({ nolimits: { users: ["bob"] } });
    expect((getPath(edge.values, "hub.extraConfig") as JsonMap)["slicehub-profiles.py"]).toBe(PROFILES_PY);
    const groups = exportOf(example("generic-oidc-groups.json")).values;
    expect(getPath(groups, "custom.slicehub.profile_access")).toEqual({ tutor: { groups: ["teaching"] }, hpc: { users: ["carol"], groups: ["hpc"] } });
    expect(getPath(groups, "hub.config.JupyterHub.load_groups")).toEqual({ teaching: { users: ["tutor1", "tutor2"] }, hpc: { users: ["alice", "bob"] } });
    expect(Object.keys(getPath(exportOf(example("google-minimal.json")).values, "hub.extraConfig") as JsonMap)).toEqual(["slicehub-login.py"]);
  });

  it("timeouts rounded up to whole seconds; named servers; sessions; activity", () => {
    expect(getPath(edge.values, "singleuser.startTimeout")).toBe(91);
    expect(getPath(edge.values, "hub.config.KubeSpawner")).toEqual({ delete_grace_period: 3, args: ["--debug"] });
    expect(getPath(edge.values, "hub.namedServerLimitPerUser")).toBe(100);
    expect(getPath(edge.values, "hub.config.JupyterHub.cookie_max_age_days")).toBe(0.0417);
    expect(getPath(edge.values, "hub.config.JupyterHub.last_activity_interval")).toBe(13);
    const none = exportOf(example("generic-oidc-groups.json")).values;
    expect(getPath(none, "hub.allowNamedServers")).toBe(false);
    expect(getPath(none, "hub.namedServerLimitPerUser")).toBeUndefined();
  });

  it("culling users carries over only with the servers' timeout; otherwise the header says what to do", () => {
    expect(getPath(edge.values, "cull")).toEqual({ enabled: true, timeout: 601, every: 2, maxAge: 0, adminUsers: false, users: true });
    const lab = exportOf(example("google-lab.json"));
    expect(getPath(lab.values, "cull.users")).toBe(false);
    expect(lab.text).toMatch(/cull\.users\.enabled with idle_timeout_s 7776000/);
    expect(lab.text).toMatch(/--cull-users --timeout=7776000/);
  });

  it("image and storage", () => {
    const v = exportOf(fixture("edge-values.json"), { storageClass: "fast", storageCapacity: "20Gi", image: { name: "registry.example:5000/lab/img", tag: "v1", source: "option" } });
    expect(getPath(v.values, "singleuser.image")).toEqual({ name: "registry.example:5000/lab/img", tag: "v1" });
    expect(getPath(v.values, "singleuser.storage")).toEqual({ type: "dynamic", capacity: "20Gi", dynamic: { storageClass: "fast" } });
    const def = exportOf(fixture("edge-values.json"), { image: { name: "quay.io/jupyter/scipy-notebook", tag: "latest", source: "default" } });
    expect(def.text).toMatch(/# The default image \(no --image given\)\. Pin a dated tag/);
    expect(exportOf(fixture("edge-values.json")).text).toContain('tag: "2025-03-10"');
  });

  it("image references", () => {
    expect(parseImage("quay.io/jupyter/scipy-notebook:2025-03-10")).toEqual({ name: "quay.io/jupyter/scipy-notebook", tag: "2025-03-10" });
    expect(parseImage("localhost:5000/img")).toEqual({ name: "localhost:5000/img", tag: "latest" });
    expect(parseImage("jupyter/base-notebook")).toEqual({ name: "jupyter/base-notebook", tag: "latest" });
    for (const bad of ["", "Img:1", "img@sha256:abc", "img:", "a b", "img:tag:x/"]) expect(parseImage(bad), bad).toBeUndefined();
  });
});

describe("HTTPS, subdomains, metrics", () => {
  it("Let's Encrypt for public_url's host, with slicehub's HSTS", () => {
    const v = exportOf(example("https-direct.json"), { letsencryptEmail: "admin@example.net" }).values;
    expect(getPath(v, "proxy.https")).toEqual({ enabled: true, type: "letsencrypt", hosts: ["hub.example.net"], letsencrypt: { contactEmail: "admin@example.net" } });
    expect(getPath(v, "proxy.traefik.hsts")).toEqual({ maxAge: 31536000, includeSubdomains: true });
    expect(getPath(v, "hub.config.JupyterHub.subdomain_host")).toBe("https://users.example.net");
    expect(getPath(v, "hub.config.JupyterHub.admin_access")).toBe(true);
  });

  it("this host's certificate files: a TLS Secret and the kubectl command for it", () => {
    const r = exportOf(example("https-direct.json"));
    expect(getPath(r.values, "proxy.https")).toEqual({ enabled: true, type: "secret", hosts: ["hub.example.net"], secret: { name: "jupyterhub-tls" } });
    expect(r.text).toContain("kubectl create secret tls jupyterhub-tls --namespace jupyterhub --cert=/etc/letsencrypt/live/hub.example.net/fullchain.pem --key=/etc/letsencrypt/live/hub.example.net/privkey.pem");
  });

  it("https behind a proxy without --letsencrypt-email: no proxy.https, and it says what to do", () => {
    const r = exportOf(example("google-minimal.json"));
    expect(r.values.proxy).toBeUndefined();
    expect(flat(r.text)).toMatch(/Rerun with --letsencrypt-email/);
    expect(r.warnings.join()).toMatch(/no certificate is exported/);
  });

  it("metrics stay behind a token; disabling them has no equivalent and is listed", () => {
    const r = exportOf(example("single-user-laptop.json"));
    expect(getPath(r.values, "hub.authenticatePrometheus")).toBe(true);
    expect(r.text).toMatch(/metrics\.enabled = false: JupyterHub always serves \/hub\/metrics/);
  });
});

describe("the header", () => {
  it("names the versions, the source and the exact helm command", () => {
    const r = exportOf(example("google-lab.json"), { valuesFile: "lab.yaml", namespace: "lab", release: "hub" });
    expect(r.text.startsWith("# Helm values for the Zero to JupyterHub chart 4.4.0 (JupyterHub 5.5.0),\n# written by slicehub 0.0.0-test")).toBe(true);
    expect(r.text).toContain("from /etc/slicehub/config.json");
    expect(r.text).toContain("#   helm upgrade --install hub jupyterhub --repo https://hub.jupyter.org/helm-chart/ --version 4.4.0 --namespace lab --create-namespace --values lab.yaml\n");
    expect(r.text).toContain("kubectl create namespace lab");
    expect(flat(r.text)).toContain("add the redirect URI https://hub.example.org/hub/oauth_callback");
  });

  it("lists every setting without an equivalent that the config sets, with what to do instead", () => {
    const text = flat(exportOf(example("google-lab.json")).text);
    const block = text.slice(text.indexOf("Not carried over"), text.indexOf("\n\nhub:"));
    for (const key of ["spawner.hooks_dir", "spawner.slice_limits", "spawner.properties", "spawner.unix_users", "spawner.hardening", "ssh", "terminal", "trusted_proxies", "spawner.profiles[].tasks"]) {
      expect(block, key).toContain(` - ${key} = `);
    }
    expect(block).toContain("singleuser.initContainers");
    expect(block).toContain("jupyterhub-ssh");
    expect(block).toContain("ResourceQuota");
    // Keys at slicehub's defaults are only named.
    expect(block).toMatch(/left at slicehub's defaults, so nothing is lost: .*http/s);
  });

  it("names what is on by default without an equivalent (per-user slices, the session idle timeout) also at its default", () => {
    const text = flat(exportOf(example("google-minimal.json")).text);
    const block = text.slice(text.indexOf("Not carried over"), text.indexOf("\n\nhub:"));
    for (const key of ["spawner.hooks_dir", "spawner.slice_limits", "spawner.hardening", "spawner.unix_users", "session.idle_timeout_s", "terminal"]) {
      expect(block, key).toContain(` - ${key} = `);
    }
    expect(block).toContain("ResourceQuota");
  });

  it("a local-spawner config lists no systemd-only keys", () => {
    const text = exportOf(example("single-user-laptop.json")).text;
    expect(text).not.toContain("spawner.hooks_dir");
    expect(text).not.toContain("spawner.hardening");
  });

  it("the inline secret's key is named but its value shown only as (set), if ever", () => {
    const cfg = parseConfigText('{"auth":{"kind":"oidc","client_id":"x","client_secret":"VERY-SECRET-1"},"spawner":{"kind":"systemd"}}', "/c.json", "/");
    if (!cfg.ok) throw new Error(cfg.errors.join());
    expect(exportOf(cfg.config).text).not.toContain("VERY-SECRET-1");
  });
});
