// The first login of an imported user: the person whose verified email the import recorded takes the user; no
// one else does, however close their email or name (attacker's tests), and nothing is merged.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bindingEmail, decideLogin, resolveIdentity, type IdTokenClaims } from "../../auth/decide.js";
import { OidcAuthSchema } from "../../src/config/schema.js";
import { Store } from "../../src/store/store.js";

const GOOGLE = "https://accounts.google.com";
const OTHER = "https://login.example.net";

let store: Store;
beforeEach(() => {
  store = new Store(":memory:");
});
afterEach(() => store.close());

/** A user as the import makes it: no identity, an import record with the email (or none). */
function imported(name: string, email: string | null) {
  const user = store.createUser(name, false)!;
  store.saveImportedUser({ user_id: user.id, source: "JupyterHub 3.x (schema 651f5419b74d)", source_name: email ?? name, email, imported: 1 });
  return user;
}

/** The callback's two steps: the access and name decision, then who the identity is (as auth/oidc.tsx does). */
function login(claims: IdTokenClaims, username: "email_local" | "email" | { claim: string } = "email_local") {
  const cfg = OidcAuthSchema.parse({ kind: "oidc", client_id: "hub", issuer: claims.iss, allowed_users: ["ada.l@gmail.com"], allowed_domains: ["example.org", "other.org", "examp1e.org"], username });
  const decision = decideLogin(cfg, claims);
  if (!decision.ok) return decision;
  const r = resolveIdentity(store, claims.iss, claims.sub, decision.username, claims);
  if (r.ok) store.saveIdentity({ issuer: claims.iss, subject: claims.sub, userId: store.ensureUser(r.name).id, email: decision.email, claims: {} });
  return r;
}

describe("an imported user's first login", () => {
  it("is taken by a verified Google Workspace login with the recorded email, in any case", () => {
    const ada = imported("ada", "ada@example.org");
    expect(login({ iss: GOOGLE, sub: "g-ada", email: "Ada@Example.org", email_verified: true, hd: "example.org" })).toMatchObject({ ok: true, name: "ada", user: { id: ada.id } });
    expect(store.getIdentityOfUser(ada.id)).toMatchObject({ subject: "g-ada" });
    // Later logins are the known identity's.
    expect(login({ iss: GOOGLE, sub: "g-ada", email: "ada@example.org", email_verified: true, hd: "example.org" })).toMatchObject({ ok: true, name: "ada" });
  });

  it("is taken by a Gmail address (no hd) and by another provider's verified email", () => {
    imported("ada.l", "ada.l@gmail.com");
    expect(login({ iss: GOOGLE, sub: "g1", email: "ada.l@gmail.com", email_verified: true })).toMatchObject({ ok: true, name: "ada.l" });
    imported("grace", "grace@example.org");
    expect(login({ iss: OTHER, sub: "o1", email: "grace@example.org", email_verified: true })).toMatchObject({ ok: true, name: "grace" });
  });

  it("is taken by email whatever name the username rule gives (a claim, or the whole email)", () => {
    imported("ada", "ada@example.org");
    expect(login({ iss: OTHER, sub: "o1", email: "ada@example.org", email_verified: true, preferred_username: "lovelace" }, { claim: "preferred_username" })).toMatchObject({ ok: true, name: "ada" });
    imported("grace", "grace@example.org");
    expect(login({ iss: OTHER, sub: "o2", email: "grace@example.org", email_verified: true }, "email")).toMatchObject({ ok: true, name: "grace" });
  });

  describe("attacks", () => {
    beforeEach(() => {
      imported("ada", "ada@example.org");
    });
    const refused = (r: ReturnType<typeof login>, reason: string) => {
      expect(r).toMatchObject({ ok: false, reason });
      expect(store.getIdentityOfUser(store.getUser("ada")!.id)).toBeUndefined();
    };

    it("a look-alike email with the same local part is refused (the name is taken)", () => {
      const r = login({ iss: OTHER, sub: "eve", email: "ada@examp1e.org", email_verified: true });
      refused(r, "subject_collision");
      expect(r.ok ? "" : r.message).toMatch(/imported from JupyterHub 3\.x .* for another email address/);
    });

    it("another domain's address with the same local part is refused", () => {
      refused(login({ iss: OTHER, sub: "eve", email: "ada@other.org", email_verified: true }), "subject_collision");
    });

    it("an unverified email, or email_verified as a string, never takes it", () => {
      refused(login({ iss: OTHER, sub: "eve", email: "ada@example.org", email_verified: false }), "email_not_verified");
      refused(login({ iss: OTHER, sub: "eve", email: "ada@example.org", email_verified: "true" }), "email_not_verified");
      // resolveIdentity checks it itself too, whatever the caller decided.
      expect(resolveIdentity(store, OTHER, "eve", "ada", { email: "ada@example.org", email_verified: "true" })).toMatchObject({ ok: false });
      expect(resolveIdentity(store, OTHER, "eve", "ada", { email: "ada@example.org" })).toMatchObject({ ok: false });
    });

    it("a consumer Google account (no hd) with the recorded Workspace address is refused", () => {
      const r = resolveIdentity(store, GOOGLE, "eve", "ada", { email: "ada@example.org", email_verified: true });
      expect(r).toMatchObject({ ok: false, reason: "subject_collision" });
      expect(r.ok ? "" : r.message).toMatch(/does not prove that address/);
      expect(bindingEmail({ iss: GOOGLE, email: "ada@example.org", email_verified: true, hd: "" })).toBeUndefined();
    });

    it("once taken, the same email from another account is refused (the user has its identity)", () => {
      expect(login({ iss: OTHER, sub: "ada-1", email: "ada@example.org", email_verified: true })).toMatchObject({ ok: true, name: "ada" });
      const r = login({ iss: OTHER, sub: "ada-2", email: "ada@example.org", email_verified: true });
      expect(r).toMatchObject({ ok: false, reason: "subject_collision" });
      expect(r.ok ? "" : r.message).toMatch(/already belongs to another account/);
    });

    it("the recorded email never takes a user that is not waiting (API-made users are not imported)", () => {
      store.createUser("grace", false);
      const r = login({ iss: OTHER, sub: "x", email: "grace@example.org", email_verified: true });
      expect(r).toMatchObject({ ok: false });
      expect(r.ok ? "" : r.message).toMatch(/without a login identity/);
    });
  });

  it("an imported user without an email is taken by no login, and the refusal says how to fix it", () => {
    imported("linus", null);
    const r = login({ iss: OTHER, sub: "l", email: "linus@example.org", email_verified: true });
    expect(r).toMatchObject({ ok: false });
    expect(r.ok ? "" : r.message).toMatch(/without an email to bind a login to.*--email-domain/);
  });

  it("the store keeps one imported user per email", () => {
    imported("ada", "ada@example.org");
    const other = store.createUser("ada2", false)!;
    expect(() => store.saveImportedUser({ user_id: other.id, source: "x", source_name: "ada2", email: "ada@example.org", imported: 1 })).toThrow(/UNIQUE/);
  });
});
