// `slicehub export z2jh` as an admin runs it: the built CLI (dist/slicehub.js) as a process.
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { REPO, schemaErrors, type JsonMap } from "./helpers.js";

const CLI = join(REPO, "dist", "slicehub.js");
const built = existsSync(CLI);
const dir = mkdtempSync(join(tmpdir(), "slicehub-export-cli-"));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: dir, timeout: 30_000, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const write = (name: string, text: string, mode = 0o644) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
};

const google = write(
  "google.json",
  JSON.stringify({
    public_url: "https://hub.example.org",
    auth: { kind: "oidc", client_id: "cid", client_secret_file: "/etc/slicehub/oidc-client-secret", allowed_domains: ["example.org"] },
    spawner: { kind: "systemd", profiles: [{ name: "small", title: "Small", memory: "2G", cpu: 1 }] },
  }),
);

let server: Server;
let issuer: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === "/realm/.well-known/openid-configuration") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/auth-here`, token_endpoint: `${issuer}/token-here`, userinfo_endpoint: `${issuer}/me` }));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  issuer = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/realm`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!built)("slicehub export z2jh (the built CLI)", () => {
  it("--help and help export describe it", async () => {
    const a = await run(["export", "--help"]);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^Usage: slicehub export z2jh/);
    expect(a.stdout).toContain("docs/growing-past-one-host.md");
    expect((await run(["help", "export"])).stdout).toBe(a.stdout);
    expect((await run(["--help"])).stdout).toContain("slicehub export z2jh");
  });

  it("every example config passes slicehub check-config and exports with exit 0", async () => {
    const examples = readdirSync(join(REPO, "examples")).filter((f) => f.endsWith(".json"));
    expect(examples.length).toBeGreaterThanOrEqual(5);
    for (const f of examples) {
      const file = join(REPO, "examples", f);
      const check = await run(["check-config", file]);
      expect(check.code, `${f}: ${check.stdout}`).toBe(0);
      const r = await run(["export", "z2jh", "-c", file, "--image", "quay.io/jupyter/scipy-notebook:2025-03-10", "--offline"]);
      expect(r.code, `${f}: ${r.stderr}`).toBe(0);
      expect(schemaErrors(parse(r.stdout) as JsonMap), f).toEqual([]);
    }
  });

  it("usage errors exit 2", async () => {
    for (const args of [["export"], ["export", "helm"], ["export", "z2jh", "--memory-guarantee-ratio", "2"], ["export", "z2jh", "--storage-capacity", "lots"], ["export", "z2jh", "--bogus"]]) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
    }
  });

  it("to stdout, with the image default said on stderr when there is no terminal to ask on", async () => {
    const r = await run(["export", "z2jh", "--config", google]);
    expect(r.code).toBe(0);
    const values = parse(r.stdout) as JsonMap;
    expect(schemaErrors(values)).toEqual([]);
    expect(values.singleuser).toMatchObject({ image: { name: "quay.io/jupyter/scipy-notebook", tag: "latest" } });
    expect(r.stderr).toMatch(/no --image and no terminal to ask on: using quay\.io\/jupyter\/scipy-notebook:latest/);
    expect(r.stdout).toContain("helm upgrade --install jupyterhub jupyterhub --repo https://hub.jupyter.org/helm-chart/ --version 4.4.0");
  });

  it("-o writes the file whole (0600), refuses to replace it without --force, replaces it with", async () => {
    const out = join(dir, "values.yaml");
    const a = await run(["export", "z2jh", "-c", google, "-o", out, "--image", "quay.io/jupyter/minimal-notebook:2025-03-10"]);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe("");
    expect(a.stderr).toContain("wrote");
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const first = readFileSync(out, "utf8");
    expect(first).toContain("--values " + out);
    expect((parse(first) as JsonMap).singleuser).toMatchObject({ image: { name: "quay.io/jupyter/minimal-notebook", tag: "2025-03-10" } });

    const b = await run(["export", "z2jh", "-c", google, "-o", out, "--image", "quay.io/jupyter/base-notebook:x"]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/exists; pass --force/);
    expect(readFileSync(out, "utf8")).toBe(first);

    const c = await run(["export", "z2jh", "-c", google, "-o", out, "--image", "quay.io/jupyter/base-notebook:x", "--force"]);
    expect(c.code).toBe(0);
    expect(readFileSync(out, "utf8")).toContain("base-notebook");
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("a bad config: every problem with line:col, exit 1, no file and no temporary file left", async () => {
    const bad = write("bad.json", '{\n  "auth": { "kind": "oidc" },\n  "lisen": "x"\n}\n');
    const out = join(dir, "bad-values.yaml");
    const r = await run(["export", "z2jh", "-c", bad, "-o", out, "--image", "a/b:c"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/auth\.client_id: missing.*\(2:/);
    expect(r.stderr).toMatch(/lisen: unknown key \(did you mean "listen"\?\) \(3:3\)/);
    expect(r.stderr).toMatch(/nothing written/);
    expect(r.stdout).toBe("");
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const missing = await run(["export", "z2jh", "-c", join(dir, "nope.json")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read: ENOENT/);
  });

  it("the development login is refused (exit 1), or exported with --allow-dev", async () => {
    const dev = write("dev.json", '{ "auth": { "kind": "dev" } }');
    const r = await run(["export", "z2jh", "-c", dev, "-o", join(dir, "dev.yaml"), "--image", "a/b:c"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not a deployment.*--allow-dev/s);
    expect(existsSync(join(dir, "dev.yaml"))).toBe(false);
    const ok = await run(["export", "z2jh", "-c", dev, "--allow-dev", "--image", "a/b:c"]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/warning: --allow-dev/);
  });

  it("an inline client secret in a 0600 config never reaches stdout or stderr (attacker's test)", async () => {
    const secret = "CLI-INLINE-SECRET-5e8f0a";
    const cfg = write("inline.json", JSON.stringify({ auth: { kind: "oidc", client_id: "cid", client_secret: secret, allowed_users: ["a@example.org"] }, spawner: { kind: "systemd" } }), 0o600);
    const r = await run(["export", "z2jh", "-c", cfg, "--image", "a/b:c"]);
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(secret);
    expect(r.stdout + r.stderr).not.toContain("5e8f0a");
  });

  it("another issuer: the endpoints from its discovery document; unreachable: guesses and a warning", async () => {
    const cfg = write("generic.json", JSON.stringify({ public_url: "https://hub.example.org", auth: { kind: "oidc", issuer, client_id: "cid", allowed_users: ["a@example.org"] }, spawner: { kind: "systemd" } }));
    const r = await run(["export", "z2jh", "-c", cfg, "--image", "a/b:c"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`reading ${issuer}/.well-known/openid-configuration`);
    const g = ((parse(r.stdout) as JsonMap).hub as JsonMap).config as JsonMap;
    expect(g.GenericOAuthenticator).toMatchObject({ authorize_url: `${issuer}/auth-here`, token_url: `${issuer}/token-here`, userdata_url: `${issuer}/me` });

    const gone = write("gone.json", JSON.stringify({ public_url: "https://hub.example.org", auth: { kind: "oidc", issuer: `${issuer}/missing`, client_id: "cid" }, spawner: { kind: "systemd" } }));
    const m = await run(["export", "z2jh", "-c", gone, "--image", "a/b:c", "--timeout", "3"]);
    expect(m.code).toBe(0);
    expect(m.stderr).toMatch(/warning: generic OIDC endpoints are guesses \(could not read .* \(HTTP 404\)\)/);
    const off = await run(["export", "z2jh", "-c", gone, "--image", "a/b:c", "--offline"]);
    expect(off.stderr).not.toContain("reading");
    expect(off.stdout).toContain("CHECK THESE THREE URLS");
  });

  it("a bad --image is a usage error, refused before anything is written", async () => {
    const out = join(dir, "img.yaml");
    const r = await run(["export", "z2jh", "-c", google, "-o", out, "--image", "Not An Image"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Run "slicehub export --help" for usage.');
    expect(r.stderr).toMatch(/--image: not an image reference/);
    expect(existsSync(out)).toBe(false);
  });
});
