// The login decision and identity linking, rule by rule.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { decideLogin, normaliseUserName, resolveIdentity, type IdTokenClaims } from "../../auth/decide.js";
import { OidcAuthSchema, type OidcAuthConfig } from "../../src/config/schema.js";
import { Store } from "../../src/store/store.js";

const GOOGLE = "https://accounts.google.com";
const OTHER = "https://login.example.net";

const cfg = (over: Record<string, unknown> = {}): OidcAuthConfig =>
  OidcAuthSchema.parse({
    kind: "oidc",
    client_id: "hub",
    allowed_users: ["guest@other.org"],
    admin_users: ["Boss@Example.com"],
    allowed_domains: ["example.com"],
    blocked_users: ["mallory@example.com"],
    ...over,
  });

const claims = (over: Partial<IdTokenClaims>): IdTokenClaims => ({ iss: OTHER, sub: "s1", email_verified: true, ...over });

describe("decideLogin", () => {
  const cases: [string, OidcAuthConfig, IdTokenClaims, string | { username: string; admin: boolean }][] = [
    ["allowed user", cfg(), claims({ email: "guest@other.org" }), { username: "guest", admin: false }],
    ["allowed user, email in another case", cfg(), claims({ email: "Guest@OTHER.org" }), { username: "guest", admin: false }],
    ["admin_users may log in and are admins", cfg({ allowed_domains: [] }), claims({ email: "boss@example.com" }), { username: "boss", admin: true }],
    ["Google: domain from hd", cfg(), claims({ iss: GOOGLE, email: "ada@example.com", hd: "example.com" }), { username: "ada", admin: false }],
    ["Google issuer without scheme", cfg(), claims({ iss: "accounts.google.com", email: "ada@example.com", hd: "Example.COM" }), { username: "ada", admin: false }],
    ["Google: hd a suffix-spoof (evil-example.com)", cfg(), claims({ iss: GOOGLE, email: "ada@example.com", hd: "evil-example.com" }), "wrong_domain"],
    ["Google: hd a suffix-spoof (example.com.evil.org)", cfg(), claims({ iss: GOOGLE, email: "ada@example.com", hd: "example.com.evil.org" }), "wrong_domain"],
    ["Google: hd a subdomain (sub.example.com)", cfg(), claims({ iss: GOOGLE, email: "ada@sub.example.com", hd: "sub.example.com" }), "wrong_domain"],
    ["Google: no hd (a gmail account) with an email at the domain", cfg(), claims({ iss: GOOGLE, email: "ada@example.com" }), "wrong_domain"],
    ["Google: hd not a string", cfg(), claims({ iss: GOOGLE, email: "ada@example.com", hd: ["example.com"] }), "wrong_domain"],
    ["other issuer: domain from the verified email", cfg(), claims({ email: "ada@example.com" }), { username: "ada", admin: false }],
    ["other issuer: hd is ignored", cfg(), claims({ email: "eve@evil.org", hd: "example.com" }), "wrong_domain"],
    ["other issuer: email domain a suffix-spoof", cfg(), claims({ email: "eve@evil-example.com" }), "wrong_domain"],
    ["other issuer: email domain ends in the domain", cfg(), claims({ email: "eve@example.com.evil.org" }), "wrong_domain"],
    ["other issuer: subdomain", cfg(), claims({ email: "eve@sub.example.com" }), "wrong_domain"],
    ["email_verified false", cfg(), claims({ email: "ada@example.com", email_verified: false }), "email_not_verified"],
    ['email_verified "true" (a string)', cfg(), claims({ email: "ada@example.com", email_verified: "true" }), "email_not_verified"],
    ["email_verified missing", cfg(), claims({ email: "ada@example.com", email_verified: undefined }), "email_not_verified"],
    ["no email", cfg(), claims({}), "no_email"],
    ["email not a string", cfg(), claims({ email: ["ada@example.com"] }), "no_email"],
    ["email without a domain", cfg(), claims({ email: "ada" }), "no_email"],
    ["blocked", cfg(), claims({ email: "mallory@example.com" }), "blocked"],
    ["blocked wins over admin", cfg({ blocked_users: ["boss@example.com"] }), claims({ email: "boss@example.com" }), "blocked"],
    ["blocked wins over allowed_users", cfg({ blocked_users: ["guest@other.org"] }), claims({ email: "guest@other.org" }), "blocked"],
    ["removed: in no list", cfg({ allowed_domains: [] }), claims({ email: "ada@example.com" }), "not_allowed"],
    ["removed: in no list, other domain", cfg(), claims({ email: "ada@other.org" }), "wrong_domain"],
    ["every list empty: nobody", cfg({ allowed_users: [], admin_users: [], allowed_domains: [], blocked_users: [] }), claims({ email: "ada@example.com" }), "not_allowed"],
  ];

  it.each(cases)("%s", (_name, config, input, expected) => {
    const d = decideLogin(config, input);
    if (typeof expected === "string") {
      expect(d).toMatchObject({ ok: false, reason: expected });
      if (!d.ok) expect(d.message.length).toBeGreaterThan(10);
    } else {
      expect(d).toMatchObject({ ok: true, ...expected });
    }
  });

  it("tells the admin to configure the lists when all are empty", () => {
    const d = decideLogin(cfg({ allowed_users: [], admin_users: [], allowed_domains: [] }), claims({ email: "ada@example.com" }));
    expect(d.ok ? "" : d.message).toMatch(/allowed_users.*admin_users.*allowed_domains.*empty/);
  });

  describe("user names", () => {
    const name = (username: unknown, c: Partial<IdTokenClaims>) => {
      const d = decideLogin(cfg({ username }), claims({ email: "ada@example.com", ...c }));
      return d.ok ? d.username : d.reason;
    };
    it.each([
      ["email_local", { email: "Ada.Lovelace@example.com" }, "ada.lovelace"],
      ["email_local", { email: "ada+lab@example.com" }, "ada-lab"],
      ["email_local", { email: "_ada_@example.com" }, "ada"],
      ["email_local", { email: "José.García@example.com" }, "jose.garcia"],
      ["email_local", { email: "+++@example.com" }, "bad_username"],
      ["email_local", { email: "名前@example.com" }, "bad_username"],
      ["email", { email: "Ada@Example.com" }, "ada-at-example.com"],
      [{ claim: "preferred_username" }, { preferred_username: "Grace Hopper" }, "grace-hopper"],
      [{ claim: "preferred_username" }, {}, "bad_username"],
      [{ claim: "preferred_username" }, { preferred_username: 42 }, "bad_username"],
    ])("%j from %j → %s", (rule, c, expected) => {
      expect(name(rule, c)).toBe(expected);
    });

    it("cuts to 64 characters and never ends in punctuation", () => {
      expect(normaliseUserName("a".repeat(80))).toBe("a".repeat(64));
      expect(normaliseUserName(`${"b".repeat(63)}.c`)).toBe("b".repeat(63));
      expect(normaliseUserName("--x--")).toBe("x");
    });
  });
});

describe("resolveIdentity", () => {
  let store: Store;
  beforeEach(() => {
    store = new Store(":memory:");
  });
  afterEach(() => store.close());

  const link = (name: string, issuer: string, subject: string) => {
    const user = store.ensureUser(name, false);
    store.saveIdentity({ issuer, subject, userId: user.id, email: `${name}@example.com`, claims: {} });
    return user;
  };

  it("gives a new subject its name", () => {
    expect(resolveIdentity(store, OTHER, "s1", "ada")).toEqual({ ok: true, name: "ada", user: undefined });
  });

  it("keeps a known subject's name even when the rule now gives another", () => {
    const ada = link("ada", OTHER, "s1");
    expect(resolveIdentity(store, OTHER, "s1", "ada.lovelace")).toMatchObject({ ok: true, name: "ada", user: { id: ada.id } });
  });

  it("refuses a new subject whose name belongs to another identity", () => {
    link("ada", OTHER, "s1");
    expect(resolveIdentity(store, OTHER, "s2", "ada")).toMatchObject({ ok: false, reason: "subject_collision" });
    expect(resolveIdentity(store, GOOGLE, "s1", "ada")).toMatchObject({ ok: false, reason: "subject_collision" });
  });

  it("refuses a name taken by a user without an identity (made via the API or dev login)", () => {
    store.ensureUser("ada", false);
    const r = resolveIdentity(store, OTHER, "s1", "ada");
    expect(r).toMatchObject({ ok: false, reason: "subject_collision" });
    expect(r.ok ? "" : r.message).toMatch(/without a login identity/);
  });
});
