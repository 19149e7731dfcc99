// The Python the export puts into hub.extraConfig, run by Debian's python3 (the jupyterhub package's, with
// tornado) against stand-ins for what the chart gives it (`c`, z2jh.get_config) and what JupyterHub calls it
// with. The login rule must decide exactly as slicehub's own (auth/decide.ts) for the same claims.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decideLogin, type IdTokenClaims } from "../../auth/decide.js";
import { ConfigSchema, type Config } from "../../src/config/schema.js";
import { LOGIN_PY, PROFILES_PY } from "../../src/z2jh/python.js";
import { exportOf } from "./helpers.js";

const PYTHON = "/usr/bin/python3";
const dir = mkdtempSync(join(tmpdir(), "slicehub-export-py-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The stand-ins: z2jh.get_config reads the exported values; `c` takes any attribute; tornado is the real one
// where installed (Debian's jupyterhub depends on it), else a minimal HTTPError.
writeFileSync(
  join(dir, "z2jh.py"),
  `import json, os
_values = json.load(open(os.environ["VALUES"]))
def get_config(key, default=None):
    v = _values
    for k in key.split("."):
        if not isinstance(v, dict) or k not in v:
            return default
        v = v[k]
    return v
`,
);
writeFileSync(
  join(dir, "harness.py"),
  `import json, os, sys, types
try:
    import tornado.web
except ImportError:
    class HTTPError(Exception):
        def __init__(self, status_code, log_message=None):
            self.status_code, self.log_message = status_code, log_message
    sys.modules["tornado"] = types.ModuleType("tornado")
    sys.modules["tornado.web"] = types.ModuleType("tornado.web")
    sys.modules["tornado.web"].HTTPError = HTTPError
from tornado.web import HTTPError

class Section:
    pass
class Config:
    def __getattr__(self, name):
        s = Section()
        setattr(self, name, s)
        return s

c = Config()
exec(open(os.environ["SNIPPET"]).read(), {"c": c})
out = []
for case in json.load(open(os.environ["CASES"])):
    try:
        if case["kind"] == "login":
            name = c.OAuthenticator.username_claim(case["info"])
            auth = types.SimpleNamespace(user_auth_state_key="oauth_user")
            model = c.Authenticator.post_auth_hook(auth, None, {"name": name, "admin": None, "auth_state": {"oauth_user": case["info"]}})
            out.append({"ok": True, "name": name, "admin": model["admin"]})
        else:
            user = types.SimpleNamespace(name=case["user"], groups=[types.SimpleNamespace(name=g) for g in case["groups"]])
            profiles = c.KubeSpawner.profile_list(types.SimpleNamespace(user=user))
            out.append({"ok": True, "profiles": [[p["slug"], p["default"]] for p in profiles]})
    except HTTPError as e:
        out.append({"ok": False, "status": e.status_code, "message": e.log_message})
print(json.dumps(out))
`,
);

type Outcome = { ok: true; name?: string; admin?: boolean; profiles?: [string, boolean][] } | { ok: false; status: number; message: string };

function runPython(cfg: Config, snippet: string, cases: object[]): Outcome[] {
  const values = exportOf(cfg).values;
  writeFileSync(join(dir, "values.json"), JSON.stringify(values));
  writeFileSync(join(dir, "snippet.py"), snippet);
  writeFileSync(join(dir, "cases.json"), JSON.stringify(cases));
  const out = execFileSync(PYTHON, [join(dir, "harness.py")], {
    env: { PATH: "/usr/bin:/bin", PYTHONPATH: dir, VALUES: join(dir, "values.json"), SNIPPET: join(dir, "snippet.py"), CASES: join(dir, "cases.json") },
    encoding: "utf8",
    timeout: 30_000,
  });
  return JSON.parse(out) as Outcome[];
}

const claims = (c: Partial<IdTokenClaims>, iss = "https://accounts.google.com"): IdTokenClaims => ({ iss, sub: "s", ...c });

/** slicehub's decision and the snippet's, for each set of claims. */
function compare(cfg: Config, cases: IdTokenClaims[]): void {
  if (cfg.auth.kind !== "oidc") throw new Error("oidc only");
  const auth = cfg.auth;
  const py = runPython(
    cfg,
    LOGIN_PY,
    cases.map((info) => ({ kind: "login", info })),
  );
  cases.forEach((info, i) => {
    const ts = decideLogin(auth, info);
    const got = py[i]!;
    const label = JSON.stringify(info);
    if (ts.ok) expect(got, label).toEqual({ ok: true, name: ts.username, admin: ts.admin });
    else expect(got, label).toMatchObject({ ok: false, status: 403 });
  });
}

describe("slicehub-login.py decides as slicehub does", () => {
  it("Google: allowed, admins, blocked, domains by hd only, verification strictly true", () => {
    const cfg = ConfigSchema.parse({
      auth: {
        kind: "oidc",
        client_id: "x",
        allowed_users: ["visitor@gmail.com", "José.García+lab@partner.example"],
        admin_users: ["boss@elsewhere.example"],
        blocked_users: ["mallory@example.org"],
        allowed_domains: ["example.org"],
      },
      spawner: { kind: "systemd" },
    });
    compare(cfg, [
      claims({ email: "visitor@gmail.com", email_verified: true }),
      claims({ email: "Visitor@Gmail.com", email_verified: true }),
      claims({ email: "josé.garcía+lab@partner.example", email_verified: true }),
      claims({ email: "boss@elsewhere.example", email_verified: true }),
      claims({ email: "ada@example.org", email_verified: true, hd: "example.org" }),
      claims({ email: "ada@example.org", email_verified: true }), // a consumer account with a domain address: no hd
      claims({ email: "ada@example.org", email_verified: true, hd: "other.example" }),
      claims({ email: "mallory@example.org", email_verified: true, hd: "example.org" }),
      claims({ email: "ada@example.org", email_verified: "true", hd: "example.org" }),
      claims({ email: "ada@example.org", hd: "example.org" }),
      claims({ email_verified: true, hd: "example.org" }),
      claims({ email: "stranger@gmail.com", email_verified: true }),
    ]);
  });

  it('another issuer: domains by the verified email; username "email"', () => {
    const cfg = ConfigSchema.parse({
      auth: { kind: "oidc", issuer: "https://login.uni.example/realms/r", client_id: "x", allowed_domains: ["uni.example"], admin_users: ["it@uni.example"], username: "email" },
      spawner: { kind: "systemd" },
    });
    const iss = "https://login.uni.example/realms/r";
    compare(cfg, [
      claims({ email: "Ada.Lovelace@uni.example", email_verified: true }, iss),
      claims({ email: "it@uni.example", email_verified: true }, iss),
      claims({ email: "ada@sub.uni.example", email_verified: true }, iss),
      claims({ email: "ada@uni.example", email_verified: false }, iss),
    ]);
  });

  it("a claim as the user name", () => {
    const cfg = ConfigSchema.parse({
      auth: { kind: "oidc", issuer: "https://idp.example", client_id: "x", allowed_users: ["a@x.example", "b@x.example"], username: { claim: "preferred_username" } },
      spawner: { kind: "systemd" },
    });
    compare(cfg, [
      claims({ email: "a@x.example", email_verified: true, preferred_username: "Ädä L." }, "https://idp.example"),
      claims({ email: "b@x.example", email_verified: true }, "https://idp.example"),
      claims({ email: "b@x.example", email_verified: true, preferred_username: "---" }, "https://idp.example"),
    ]);
  });
});

describe("slicehub-profiles.py offers each user the profiles they may use", () => {
  const cfg = ConfigSchema.parse({
    auth: { kind: "oidc", client_id: "x", allowed_domains: ["example.org"] },
    groups: { lab: ["grace"] },
    spawner: {
      kind: "systemd",
      profiles: [
        { name: "big", title: "Big", memory: "32G", groups: ["lab"] },
        { name: "small", title: "Small", memory: "2G" },
        { name: "carols", title: "Carol's", users: ["carol"] },
        { name: "only", title: "Only ada", users: ["ada"], groups: ["nobody"] },
      ],
    },
  });

  it("by name and by group, the first offered the default; none offered is a refusal", () => {
    const out = runPython(cfg, PROFILES_PY, [
      { kind: "profiles", user: "grace", groups: ["lab"] },
      { kind: "profiles", user: "bob", groups: [] },
      { kind: "profiles", user: "carol", groups: ["other"] },
      { kind: "profiles", user: "ada", groups: [] },
    ]);
    expect(out).toEqual([
      { ok: true, profiles: [["big", true], ["small", false]] },
      { ok: true, profiles: [["small", true]] },
      { ok: true, profiles: [["small", true], ["carols", false]] },
      { ok: true, profiles: [["small", true], ["only", false]] },
    ]);
  });

  it("a user who may use no profile gets no server (rather than one without limits)", () => {
    const onlyRestricted = ConfigSchema.parse({ auth: { kind: "oidc", client_id: "x" }, spawner: { kind: "systemd", profiles: [{ name: "p", title: "P", users: ["ada"] }] } });
    expect(runPython(onlyRestricted, PROFILES_PY, [{ kind: "profiles", user: "eve", groups: [] }])).toEqual([{ ok: false, status: 403, message: "eve may not use any server profile" }]);
  });
});
