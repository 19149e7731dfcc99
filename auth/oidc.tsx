// OpenID Connect login (authorization code flow with PKCE, state and nonce) through openid-client, which
// checks the ID token's signature, issuer, audience, expiry and nonce. What happens with the verified claims
// is decided in decide.ts. No token, code or ID token is ever logged.
//
// A login in progress (state, nonce, PKCE verifier, next) is kept in the browser, in a cookie sealed with a key
// only the hub has, never in the database: anyone can start logins, as many as they like, and that must not
// make the hub write anything.
import type { Context } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import { EncryptJWT, errors as joseErrors, jwtDecrypt } from "jose";
import * as client from "openid-client";
import { isLoopbackHost, type Config, type OidcAuthConfig } from "../src/config/schema.js";
import type { Hub, HubEnv } from "../src/hub/context.js";
import { safeEqual } from "../src/secrets.js";
import type { UserRow } from "../src/store/store.js";
import { decideLogin, resolveIdentity } from "./decide.js";
import { safeNext } from "./next.js";
import type { LoginError, LoginPages } from "./pages.js";
import { preferredValues } from "../src/hub/cookie-values.js";
import { isHttps, startSession } from "../src/hub/session.js";
import { clientAddress } from "../src/forwarded.js";

const ATTEMPT_TTL_S = 600;
/**
 * Carries the sealed login attempt, which binds it to the browser that started it: without that, someone could
 * start a login as themselves and send the callback link to a victim, who would then be logged in as the
 * attacker. Not a __Host- cookie under https: that prefix needs Path=/, and this one is only for the callback.
 */
const STATE_COOKIE = "slicehub-oauth-state";
/** The store's name for the sealing key. */
const SEAL_KEY = "oidc-state-cookie";
/** The sealed cookie's JWE "typ", so nothing else sealed under the key could pass for it. */
const SEAL_TYP = "slicehub-oidc-attempt";
/**
 * No browser keeps a longer cookie, so anything longer is not ours. A sealed attempt is about 1.8 KB with the
 * longest next= safeNext keeps, about 3.1 KB at worst (a next= of quotes, which JSON doubles).
 */
const MAX_SEALED = 4096;
/** Callbacks remembered against replay; past this many the oldest are forgotten (the provider's codes are single use too). */
const MAX_USED_STATES = 10_000;
const CALLBACK_PATH = "/hub/oauth_callback";
/** A hint only, passed to the provider; printable and at most as long as an email address can be. */
const LOGIN_HINT = /^[^\p{C}]{1,320}$/u;

/** A login started at /hub/oauth_login and finished at /hub/oauth_callback. */
export interface LoginAttempt {
  state: string;
  nonce: string;
  codeVerifier: string;
  next: string;
}

/**
 * Seals an attempt for the state cookie: compact JWE, "dir" with A256GCM under the hub's 32-byte key, so the
 * browser can neither read nor alter it, and it expires with the attempt.
 */
export async function sealAttempt(key: Uint8Array, a: LoginAttempt, ttlS = ATTEMPT_TTL_S): Promise<string> {
  return new EncryptJWT({ state: a.state, nonce: a.nonce, cv: a.codeVerifier, next: a.next })
    .setProtectedHeader({ alg: "dir", enc: "A256GCM", typ: SEAL_TYP })
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlS)
    .encrypt(key);
}

export type OpenedAttempt = { ok: true; attempt: LoginAttempt; expiresAt: number } | { ok: false; why: string };

/**
 * The attempt sealed in `sealed`, if it was sealed under `key`, is unaltered, has not expired and is for the
 * `state` the provider sent back (compared in constant time). `why` is for the log and holds no secret.
 */
export async function openAttempt(key: Uint8Array, sealed: string, state: string): Promise<OpenedAttempt> {
  if (sealed.length > MAX_SEALED) return { ok: false, why: "the state cookie is not one this hub sealed" };
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtDecrypt(sealed, key, {
      keyManagementAlgorithms: ["dir"],
      contentEncryptionAlgorithms: ["A256GCM"],
      typ: SEAL_TYP,
      requiredClaims: ["exp"],
    }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return { ok: false, why: "the login attempt expired" };
    return { ok: false, why: "the state cookie is not one this hub sealed (altered, or from before a key change)" };
  }
  const { state: sealedState, nonce, cv, next, exp } = payload;
  if (typeof sealedState !== "string" || typeof nonce !== "string" || typeof cv !== "string" || typeof next !== "string" || typeof exp !== "number") {
    return { ok: false, why: "the state cookie is not one this hub sealed" };
  }
  if (!safeEqual(state, sealedState)) return { ok: false, why: "the state does not belong to this browser's login" };
  return { ok: true, attempt: { state: sealedState, nonce, codeVerifier: cv, next }, expiresAt: exp * 1000 };
}

/**
 * The states of callbacks already taken, so the same callback URL with the same cookie works once. Bounded: an
 * entry is dropped once its attempt has expired (the cookie is refused by then anyway), and past `max` entries
 * the oldest go. Anyone can start logins and fill this, so it must not fail closed: a forgotten state only
 * lets a replay reach the provider, which refuses a code used before.
 */
export class UsedStates {
  private readonly until = new Map<string, number>();
  constructor(private readonly max = MAX_USED_STATES) {}

  /** True the first time a state is taken before `expiresAt` (ms); false when it was taken already. */
  take(state: string, expiresAt: number, now = Date.now()): boolean {
    const seen = this.until.get(state);
    if (seen !== undefined && seen > now) return false;
    this.until.delete(state);
    // Map order is insertion order, close to expiry order; expired entries further in go when they come up.
    for (const [s, t] of this.until) {
      if (t > now && this.until.size < this.max) break;
      this.until.delete(s);
    }
    this.until.set(state, expiresAt);
    return true;
  }

  get size(): number {
    return this.until.size;
  }
}

export interface OidcHandlers {
  loginPage(c: Context<HubEnv>): Response | Promise<Response>;
  start(c: Context<HubEnv>): Promise<Response>;
  callback(c: Context<HubEnv>): Promise<Response>;
}

/** The handlers behind /hub/login, /hub/oauth_login and /hub/oauth_callback while auth.kind is "oidc". */
export function oidcHandlers(hub: Hub, clientSecret: string | undefined, pages: LoginPages): OidcHandlers {
  const { store, log } = hub;
  // Discovery once per (issuer, client_id); a failed one is forgotten so the next login tries again.
  const discovered = new Map<string, Promise<client.Configuration>>();
  let warnedInsecure = false;
  const used = new UsedStates();
  let key: Uint8Array | undefined;
  const sealKey = () => (key ??= new Uint8Array(store.secret(SEAL_KEY)));

  function providerConfig(auth: OidcAuthConfig): Promise<client.Configuration> {
    const key = `${auth.issuer} ${auth.client_id}`;
    let found = discovered.get(key);
    if (!found) {
      const issuer = new URL(auth.issuer);
      // Plain http only to a provider on this machine, and only when a test asks for it.
      const insecure = process.env.SLICEHUB_TEST_INSECURE_OIDC === "1" && isLoopbackHost(issuer.hostname);
      if (insecure && !warnedInsecure) {
        log.warn("SLICEHUB_TEST_INSECURE_OIDC=1: allowing plain http to a loopback OIDC issuer (for tests only)", { issuer: auth.issuer });
        warnedInsecure = true;
      }
      found = client.discovery(issuer, auth.client_id, clientSecret, undefined, {
        timeout: 10,
        execute: insecure ? [client.allowInsecureRequests] : [],
      });
      discovered.set(key, found);
      found.catch(() => discovered.delete(key));
    }
    return found;
  }

  /** The provider's configuration, or the 503 page (logged) when it cannot be had. */
  async function providerOr503(c: Context<HubEnv>, auth: OidcAuthConfig): Promise<client.Configuration | Response> {
    if (clientSecret === undefined) {
      log.error("OIDC login is configured but no client secret was loaded at start-up; restart slicehub");
      return unavailable(c, pages, "Login is not set up completely on this hub. Ask the hub's administrator to restart it.");
    }
    try {
      return await providerConfig(auth);
    } catch (err) {
      log.error("cannot read the OIDC provider's configuration", { issuer: auth.issuer, error: err });
      return unavailable(c, pages, `The identity provider ${providerName(auth.issuer)} cannot be reached right now. Please try again in a minute.`);
    }
  }

  function refuse(c: Context<HubEnv>, reason: LoginError, fields: Record<string, unknown>): Response {
    log.info("login refused", { reason, ...fields });
    return c.redirect(`/hub/login?error=${reason}`, 303);
  }

  return {
    loginPage(c) {
      const auth = oidcAuth(hub.config());
      const next = safeNext(c.req.query("next"));
      const code = c.req.query("error");
      const error = code !== undefined ? pages.errorText(code) : undefined;
      if (!error && c.get("who")?.via === "session") return c.redirect(next, 302);
      const href = `/hub/oauth_login?next=${encodeURIComponent(next)}`;
      return c.html(pages.oidcLogin({ provider: providerName(auth.issuer), href, error }));
    },

    async start(c) {
      const cfg = hub.config();
      const auth = oidcAuth(cfg);
      const config = await providerOr503(c, auth);
      if (config instanceof Response) return config;

      const state = client.randomState();
      const nonce = client.randomNonce();
      const codeVerifier = client.randomPKCECodeVerifier();
      const sealed = await sealAttempt(sealKey(), { state, nonce, codeVerifier, next: safeNext(c.req.query("next")) });
      setCookie(c, STATE_COOKIE, sealed, { path: CALLBACK_PATH, httpOnly: true, sameSite: "Lax", secure: isHttps(cfg), maxAge: ATTEMPT_TTL_S });

      const params: Record<string, string> = {
        redirect_uri: redirectUri(cfg),
        scope: auth.scopes.join(" "),
        state,
        nonce,
        code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: "S256",
      };
      const hint = c.req.query("login_hint");
      if (hint !== undefined && LOGIN_HINT.test(hint)) params.login_hint = hint;
      c.header("Cache-Control", "no-store");
      return c.redirect(client.buildAuthorizationUrl(config, params).href, 303);
    },

    async callback(c) {
      const cfg = hub.config();
      const auth = oidcAuth(cfg);
      c.header("Cache-Control", "no-store");
      const query = new URL(c.req.url).searchParams;
      const state = query.get("state");
      // Every value of the cookie's name, the last first: a page on this origin can toss more (see
      // src/hub/cookie-values.ts), and a garbage one must not spoil the login this browser started.
      const sealed = preferredValues(c.req.header("cookie"), STATE_COOKIE, MAX_SEALED);
      deleteCookie(c, STATE_COOKIE, { path: CALLBACK_PATH, secure: isHttps(cfg) });
      if (!state || !sealed.length) return refuse(c, "expired", { why: "no state, or no login started in this browser" });
      let opened: Awaited<ReturnType<typeof openAttempt>> | undefined;
      for (const value of sealed) {
        opened = await openAttempt(sealKey(), value, state);
        if (opened.ok) break;
      }
      if (!opened?.ok) return refuse(c, "expired", { why: opened?.why ?? "no sealed attempt" });
      if (!used.take(state, opened.expiresAt)) return refuse(c, "expired", { why: "this login attempt was used already" });
      const { attempt } = opened;

      const config = await providerOr503(c, auth);
      if (config instanceof Response) return config;
      // The provider redirected to the public URL; behind a reverse proxy c.req.url may name another host.
      const current = new URL(redirectUri(cfg));
      current.search = query.toString();
      let claims: client.IDToken;
      try {
        const tokens = await client.authorizationCodeGrant(config, current, {
          pkceCodeVerifier: attempt.codeVerifier,
          expectedState: state,
          expectedNonce: attempt.nonce,
          idTokenExpected: true,
        });
        claims = tokens.claims()!;
      } catch (err) {
        const provider_error = err instanceof client.AuthorizationResponseError ? err.error : undefined;
        return refuse(c, "failed", { error: err, provider_error });
      }

      const decision = decideLogin(auth, claims);
      if (!decision.ok) return refuse(c, decision.reason, { email: claims.email, why: decision.message });

      const outcome = store.transaction((): { ok: true; user: UserRow } | { ok: false; reason: LoginError; message: string } => {
        const resolved = resolveIdentity(store, claims.iss, claims.sub, decision.username, claims);
        if (!resolved.ok) return resolved;
        if (resolved.user?.blocked) return { ok: false, reason: "blocked", message: `${resolved.name} is blocked by an admin` };
        // Admin rights follow the config both ways, so set them on every login.
        const user = store.ensureUser(resolved.name, decision.admin);
        store.saveIdentity({
          issuer: claims.iss,
          subject: claims.sub,
          userId: user.id,
          email: decision.email,
          claims: { email: claims.email, email_verified: claims.email_verified, hd: claims.hd },
        });
        return { ok: true, user };
      });
      if (!outcome.ok) return refuse(c, outcome.reason, { user: decision.username, email: decision.email, why: outcome.message });

      // A different person may have been logged in in this browser; that session ends here.
      const previous = c.get("who")?.session;
      if (previous) store.deleteSession(previous);
      startSession(c, store, cfg, outcome.user.id);
      // The address as trusted_proxies lets the hub believe it (src/forwarded.ts), never a client's own claim.
      const from = clientAddress((c.env as Partial<HubEnv["Bindings"]> | undefined)?.incoming, cfg.trusted_proxies);
      log.info("user logged in", { user: outcome.user.name, email: decision.email, admin: decision.admin, method: "oidc", client: from });
      return c.redirect(attempt.next, 302);
    },
  };
}

function oidcAuth(cfg: Config): OidcAuthConfig {
  if (cfg.auth.kind !== "oidc") throw new Error("OIDC login used while auth.kind is not oidc");
  return cfg.auth;
}

/** Exactly what is registered with the provider. */
function redirectUri(cfg: Config): string {
  return new URL(CALLBACK_PATH, cfg.public_url ?? cfg.listen).href;
}

function providerName(issuer: string): string {
  const host = new URL(issuer).host;
  return host === "accounts.google.com" ? "Google" : host;
}

function unavailable(c: Context<HubEnv>, pages: LoginPages, message: string): Response | Promise<Response> {
  c.header("Retry-After", "60");
  return c.html(pages.unavailable({ message }), 503);
}
