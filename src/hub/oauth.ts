// The hub as OAuth 2 provider for single-user servers (docs/jupyterhub-compat.md, "OAuth provider"):
// authorization-code flow, client secret = the server's API token, single-use five-minute codes, optional
// PKCE S256.
import { createHash } from "node:crypto";
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { validator } from "hono/validator";
import { z } from "zod";
import { serverFilter } from "../names.js";
import { hasScope } from "../scopes.js";
import { safeEqual, sha256 } from "../secrets.js";
import { limitBody } from "./body-limit.js";
import type { Hub, HubEnv } from "./context.js";
import { refusePage } from "./refuse.js";

const CODE_TTL_MS = 5 * 60_000;
const TOKEN_BODY_MAX = 8 * 1024;
/** JupyterHub's default: cookie_max_age_days (14) in seconds. */
const TOKEN_TTL_S = 14 * 86_400;

const AuthorizeQuery = z.object({
  client_id: z.string().min(1).max(300),
  redirect_uri: z.string().max(2000).optional(),
  response_type: z.string().optional(),
  state: z.string().max(4000).optional(),
  code_challenge: z.string().regex(/^[A-Za-z0-9_-]{43,128}$/).optional(),
  code_challenge_method: z.string().optional(),
});

const TokenForm = z.object({
  grant_type: z.string().optional(),
  code: z.string().max(200).optional(),
  client_id: z.string().max(300).optional(),
  client_secret: z.string().max(300).optional(),
  redirect_uri: z.string().max(2000).optional(),
  code_verifier: z.string().max(200).optional(),
});

/** RFC 6749 §2.3.1: id and secret form-encoded, then joined by ":" and base64-encoded. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | "malformed" | undefined {
  const m = /^basic\s+([A-Za-z0-9+/=]{1,2000})\s*$/i.exec(header ?? "");
  if (!m) return header && /^basic\b/i.test(header) ? "malformed" : undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString();
  const colon = decoded.indexOf(":");
  if (colon < 0) return "malformed";
  try {
    const plus = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
    return { id: plus(decoded.slice(0, colon)), secret: plus(decoded.slice(colon + 1)) };
  } catch {
    return "malformed";
  }
}

/** Ends the request with OAuth's error answer (RFC 6749 §5.2), not the hub API's {status, message}. */
function oauthError(c: Context, status: number, error: string, description?: string): never {
  c.header("Cache-Control", "no-store");
  throw new HTTPException(status as 400, { res: c.json({ error, ...(description ? { error_description: description } : {}) }, status as 400) });
}

/** Authorizing is a browser's step: without a session, log in first and come back. */
const browserSession: MiddlewareHandler<HubEnv> = async (c, next) => {
  if (c.get("who")?.via === "session") return next();
  const self = new URL(c.req.url);
  return c.redirect(`/hub/login?next=${encodeURIComponent(self.pathname + self.search)}`, 302);
};

export function oauthProvider(hub: Hub): Hono<HubEnv> {
  const app = new Hono<HubEnv>();
  const { store } = hub;

  // Its refusals are pages, for the person whose browser followed the link. A parameter given twice counts
  // once, as it always has (c.req.query(), not the validator's arrays for repeated names).
  const authorizeQuery = validator("query", (_value, c) => {
    const q = AuthorizeQuery.safeParse(c.req.query());
    if (!q.success) refusePage(400, "This login link is malformed (missing or invalid client_id, state or PKCE parameters).");
    return q.data;
  });

  app.get("/authorize", browserSession, authorizeQuery, (c) => {
    const who = c.get("who")!;
    const q = c.req.valid("query");
    const client = store.getOAuthClient(q.client_id);
    if (!client) refusePage(400, `No such OAuth client: ${q.client_id}. Is the server still running?`);
    if (q.redirect_uri !== undefined && q.redirect_uri !== client.redirect_uri) {
      refusePage(400, "The redirect_uri does not match the one registered for this server.");
    }
    if (q.response_type !== undefined && q.response_type !== "code") refusePage(400, "Only response_type=code is supported.");
    if (q.code_challenge && (q.code_challenge_method ?? "plain") !== "S256") refusePage(400, "Only PKCE S256 is supported.");
    const server = client.server_id !== null ? store.getServerById(client.server_id) : undefined;
    const owner = server && store.getUserById(server.user_id);
    if (!server || !owner) refusePage(400, "This OAuth client no longer belongs to a server.");
    const filter = serverFilter(owner.name, server.name);
    if (!hasScope(who.scopes, "access:servers", { server: filter })) {
      refusePage(403, `You do not have permission to access Server at ${client.redirect_uri.replace(/oauth_callback$/, "")}`);
    }
    const scopes = [`access:servers!server=${filter}`, `read:users:groups!user=${who.user.name}`, `read:users:name!user=${who.user.name}`];
    const code = store.createOAuthCode({
      client_id: client.id,
      user_id: who.user.id,
      scopes: JSON.stringify(scopes),
      redirect_uri: client.redirect_uri,
      session_id: who.session!.public_id,
      code_challenge: q.code_challenge ?? null,
      expires_at: Date.now() + CODE_TTL_MS,
    });
    const target = new URLSearchParams({ code });
    if (q.state !== undefined) target.set("state", q.state);
    const sep = client.redirect_uri.includes("?") ? "&" : "?";
    return c.redirect(`${client.redirect_uri}${sep}${target.toString()}`, 302);
  });

  // The form is a code, a secret, a redirect URI and a PKCE verifier: a few hundred bytes.
  app.post("/token", limitBody(() => TOKEN_BODY_MAX), async (c) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/x-www-form-urlencoded") oauthError(c, 400, "unsupported_grant_type", "the body must be form-encoded");
    // A client that authenticates with HTTP Basic is checked before its body is read.
    const basic = basicCredentials(c.req.header("authorization"));
    if (basic === "malformed") oauthError(c, 401, "invalid_client", "malformed Basic credentials");
    const authenticate = (id: string | undefined, secret: string | undefined) => {
      const client = id ? store.getOAuthClient(id) : undefined;
      return client && secret && safeEqual(sha256(secret), client.secret_hash) ? client : undefined;
    };
    let client = basic ? authenticate(basic.id, basic.secret) : undefined;
    if (basic && !client) oauthError(c, 401, "invalid_client");
    const form = TokenForm.safeParse(Object.fromEntries(new URLSearchParams(await c.req.text())));
    if (!form.success) oauthError(c, 400, "invalid_request");
    client ??= authenticate(form.data.client_id, form.data.client_secret);
    if (!client) oauthError(c, 401, "invalid_client");
    if (basic && form.data.client_id !== undefined && form.data.client_id !== client.id) oauthError(c, 400, "invalid_request", "client_id does not match the Basic credentials");
    if (form.data.grant_type !== "authorization_code") oauthError(c, 400, "unsupported_grant_type");
    const code = form.data.code ? store.consumeOAuthCode(form.data.code) : undefined;
    if (!code || code.client_id !== client.id) oauthError(c, 400, "invalid_grant");
    if (form.data.redirect_uri !== undefined && form.data.redirect_uri !== client.redirect_uri) oauthError(c, 400, "invalid_grant", "redirect_uri mismatch");
    if (code.code_challenge) {
      const verifier = form.data.code_verifier;
      const computed = verifier ? createHash("sha256").update(verifier).digest("base64url") : "";
      if (!verifier || !safeEqual(computed, code.code_challenge)) oauthError(c, 400, "invalid_grant", "PKCE verification failed");
    }
    const scopes = JSON.parse(code.scopes) as string[];
    const { token } = store.createToken({
      userId: code.user_id,
      kind: "oauth",
      scopes,
      note: `OAuth for ${client.description}`,
      oauthClientId: client.id,
      sessionId: code.session_id,
      serverId: client.server_id,
      expiresInS: TOKEN_TTL_S,
    });
    c.header("Cache-Control", "no-store");
    c.header("Pragma", "no-cache");
    return c.json({ access_token: token, token_type: "Bearer", expires_in: TOKEN_TTL_S, scope: scopes.join(" ") });
  });

  return app;
}
