// JupyterHub's REST API, the subset jupyterhub-singleuser, the idle culler and ordinary API clients use
// (compatibility spec §2, §4, §5). Errors are JSON {"status", "message"}; a bad token is always 403.
import { Hono, type Context } from "hono";
import { z } from "zod";
import type { ProgressEvent } from "../lifecycle.js";
import { SERVER_NAME, USER_NAME, serverFilter, serverPrefix } from "../names.js";
import { hasScope, scopeUsers } from "../scopes.js";
import type { ServerRow, UserRow } from "../store/store.js";
import { parseIso, settledWithin } from "../time.js";
import type { Hub, HubEnv, Who } from "./context.js";
import { csrfProblem } from "./identify.js";
import { tokenModel, userModel } from "./models.js";
import { mintToken } from "./tokens.js";

const PAGINATION = "application/jupyterhub-pagination+json";
const SLOW_SPAWN_MS = 10_000;
const SLOW_STOP_MS = 10_000;

export function apiError(c: Context, status: number, message: string): Response {
  return c.json({ status, message }, status as 400);
}

const ActivityBody = z.looseObject({
  last_activity: z.string().optional(),
  servers: z.record(z.string(), z.looseObject({ last_activity: z.string() })).optional(),
});

const TokenRequest = z.strictObject({
  note: z.string().max(1000).optional(),
  expires_in: z.number().int().positive().max(10 * 365 * 86_400).nullable().optional(),
  scopes: z.array(z.string().max(200)).max(100).optional(),
  roles: z.array(z.string()).max(0, "roles are not supported; ask for scopes").optional(),
});

/** Whole numbers as decimal digits; anything else is the client's mistake, said so, not a database error. */
const count = (what: string) =>
  z
    .string()
    .regex(/^\d{1,9}$/, `${what} must be a whole number below 1000000000`)
    .transform(Number)
    .optional();
const PageQuery = z.object({ offset: count("offset"), limit: count("limit"), name_filter: z.string().max(200).optional() });

const CreateUser = z.looseObject({ admin: z.boolean().optional() });

async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return Symbol.for("invalid");
  }
}

export function hubApi(hub: Hub): Hono<HubEnv> {
  const api = new Hono<HubEnv>();
  const { store, lifecycle } = hub;


  // Everything below needs a caller. An unknown, revoked or expired token is 403, never 401: the
  // single-user server treats any other 4xx as a hard failure.
  api.use("*", async (c, next) => {
    if (c.req.path.startsWith("/hub/api/oauth2/")) return next();
    const who = c.get("who");
    if (!who) return apiError(c, 403, "Forbidden");
    const bad = csrfProblem(c, who, hub.config().public_url);
    if (bad) return apiError(c, 403, bad);
    return next();
  });

  const need = (c: Context<HubEnv>, scope: string, target: { user?: string; server?: string } = {}): Who | Response => {
    const who = c.get("who")!;
    if (hasScope(who.scopes, scope, target)) return who;
    return apiError(c, 403, `Action is not authorized with current scopes; requires any of [${scope}]`);
  };

  const findUser = (c: Context<HubEnv>): UserRow | Response => {
    const user = store.getUser(c.req.param("name") ?? "");
    return user ?? apiError(c, 404, `No such user: ${c.req.param("name")}`);
  };

  /** The user the path names, and the caller if it holds `scope` on that user (404 before 403, like JupyterHub). */
  const onUser = (c: Context<HubEnv>, scope: string): { user: UserRow; who: Who } | Response => {
    const user = findUser(c);
    if (user instanceof Response) return user;
    const who = need(c, scope, { user: user.name });
    return who instanceof Response ? who : { user, who };
  };

  api.get("/user", (c) => {
    const who = c.get("who")!;
    const model = userModel(store, lifecycle, who.user, who.scopes);
    return c.json({
      ...model,
      admin: !!who.user.admin,
      groups: [],
      session_id: who.token?.session_id ?? who.session?.public_id ?? null,
      token_id: who.token ? `a${who.token.id}` : null,
      scopes: [...who.scopes].sort(),
    });
  });

  api.get("/users", (c) => {
    const who = c.get("who")!;
    const reach = scopeUsers(who.scopes, "list:users");
    if (reach !== "all" && reach.size === 0) return apiError(c, 403, "Action is not authorized with current scopes; requires any of [list:users]");
    const state = c.req.query("state");
    if (state !== undefined && state !== "active" && state !== "ready" && state !== "inactive") {
      return apiError(c, 400, `Unrecognized state filter: '${state}'`);
    }
    const page = PageQuery.safeParse({ offset: c.req.query("offset"), limit: c.req.query("limit"), name_filter: c.req.query("name_filter") });
    if (!page.success) return apiError(c, 400, page.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const paginated = (c.req.header("accept") ?? "").split(",").some((a) => a.trim().split(";")[0] === PAGINATION);
    const maxLimit = 200;
    const limit = Math.min(maxLimit, Math.max(1, page.data.limit ?? (paginated ? 50 : maxLimit)));
    const offset = page.data.offset ?? 0;
    const nameFilter = page.data.name_filter || undefined;
    let users: UserRow[];
    let total: number;
    if (reach === "all") {
      ({ users, total } = store.listUsers({ state, nameFilter, offset, limit }));
    } else {
      const visible = store
        .listUsers({ state, nameFilter, offset: 0, limit: 1_000_000 })
        .users.filter((u) => reach.has(u.name));
      total = visible.length;
      users = visible.slice(offset, offset + limit);
    }
    // The page's servers in one query, not one per user.
    const servers = store.listServersOf(users.map((u) => u.id));
    const includeStopped = c.req.query("include_stopped_servers") !== undefined;
    const items = users.map((u) => userModel(store, lifecycle, u, who.scopes, { includeStopped, servers: servers.get(u.id) }));
    if (!paginated) return c.json(items);
    const nextOffset = offset + limit;
    let next: object | null = null;
    if (nextOffset < total) {
      const url = new URL(c.req.url);
      url.searchParams.set("offset", String(nextOffset));
      url.searchParams.set("limit", String(limit));
      next = { offset: nextOffset, limit, url: url.href };
    }
    return c.json({ items, _pagination: { offset, limit, total, next } });
  });

  api.get("/users/:name", (c) => {
    const r = onUser(c, "read:users:name");
    if (r instanceof Response) return r;
    const { user, who } = r;
    return c.json(userModel(store, lifecycle, user, who.scopes, { includeStopped: c.req.query("include_stopped_servers") !== undefined }));
  });

  api.post("/users/:name", async (c) => {
    const who = need(c, "admin:users");
    if (who instanceof Response) return who;
    const name = c.req.param("name");
    if (!USER_NAME.test(name)) return apiError(c, 400, `Invalid user name: ${name}`);
    const body = CreateUser.safeParse((await jsonBody(c)) ?? {});
    if (!body.success) return apiError(c, 400, "body must be a JSON object like {\"admin\": false}");
    const user = store.createUser(name, body.data.admin ?? false);
    if (!user) return apiError(c, 409, `User ${name} already exists`);
    hub.log.info("user created", { user: name, by: who.user.name });
    return c.json(userModel(store, lifecycle, user, who.scopes), 201);
  });

  api.delete("/users/:name", async (c) => {
    const r = onUser(c, "delete:users");
    if (r instanceof Response) return r;
    const { user, who } = r;
    if (who.user.id === user.id) return apiError(c, 400, "Cannot delete yourself");
    const servers = store.listServers(user.id);
    if (servers.some((s) => lifecycle.status(s) === "stopping")) return apiError(c, 400, `${user.name}'s server is in the process of stopping, please wait.`);
    await Promise.all(servers.map((s) => lifecycle.remove(user, s)));
    store.deleteUser(user.id);
    hub.log.info("user deleted", { user: user.name, by: who.user.name });
    return c.body(null, 204);
  });

  api.post("/users/:name/activity", async (c) => {
    const r = onUser(c, "users:activity");
    if (r instanceof Response) return r;
    const { user } = r;
    const raw = await jsonBody(c);
    const parsed = ActivityBody.safeParse(raw);
    if (!parsed.success || (parsed.data.last_activity === undefined && parsed.data.servers === undefined)) {
      return apiError(c, 400, "body must contain at least one of `last_activity` or `servers`");
    }
    const limit = Date.now() + 59 * 60_000;
    const when = (s: string): number | string => {
      const t = parseIso(s);
      if (Number.isNaN(t)) return `Invalid timestamp: ${s}`;
      if (t > limit) return `last_activity ${s} is more than an hour in the future`;
      return t;
    };
    const updates: [ServerRow, number][] = [];
    for (const [name, v] of Object.entries(parsed.data.servers ?? {})) {
      const server = store.getServer(user.id, name);
      if (!server) return apiError(c, 400, `No such server '${name}' for user ${user.name}`);
      const t = when(v.last_activity);
      if (typeof t === "string") return apiError(c, 400, t);
      updates.push([server, t]);
    }
    let userTime: number | undefined;
    if (parsed.data.last_activity !== undefined) {
      const t = when(parsed.data.last_activity);
      if (typeof t === "string") return apiError(c, 400, t);
      userTime = t;
    }
    store.transaction(() => {
      for (const [s, t] of updates) store.touchServer(s.id, t);
      if (userTime !== undefined) store.touchUser(user.id, userTime);
    });
    return c.body(null, 200);
  });

  // ---- servers

  const serverRoute = (named: boolean) => async (c: Context<HubEnv>) => {
    const user = findUser(c);
    if (user instanceof Response) return user;
    const serverName = named ? (c.req.param("server") ?? "") : "";
    const target = { server: serverFilter(user.name, serverName) };

    if (c.req.method === "POST") {
      const who = need(c, "servers", target);
      if (who instanceof Response) return who;
      if (named && !SERVER_NAME.test(serverName)) return apiError(c, 400, `Invalid server name: ${serverName}`);
      // Whether named servers are enabled, and their limit, are the lifecycle's to check, after this await, in
      // the same step that records the start.
      const body = await jsonBody(c);
      if (body === Symbol.for("invalid") || (body !== undefined && (typeof body !== "object" || body === null || Array.isArray(body)))) {
        return apiError(c, 400, "user_options must be a JSON object");
      }
      const existing = store.getServer(user.id, serverName);
      if (existing && lifecycle.status(existing) === "pending") return c.body(null, 202);
      const started = lifecycle.start(user, serverName, (body as object | undefined) ?? {});
      if (!started.ok) return apiError(c, started.status, started.message);
      if (!(await settledWithin(started.done, SLOW_SPAWN_MS))) return c.body(null, 202);
      const after = store.getServer(user.id, serverName);
      if (after?.state === "running") return c.body(null, 201);
      return apiError(c, 500, after?.failure ?? "Spawn failed");
    }

    // DELETE
    const who = need(c, "delete:servers", target);
    if (who instanceof Response) return who;
    const server = store.getServer(user.id, serverName);
    const body = await jsonBody(c);
    const remove = typeof body === "object" && body !== null && (body as { remove?: unknown }).remove === true;
    if (remove && !named) return apiError(c, 400, "Cannot remove the default server");
    if (!server) return named ? apiError(c, 404, `${user.name} has no server named '${serverName}'`) : c.body(null, 204);
    const stopped = remove ? lifecycle.remove(user, server) : lifecycle.stop(user, server);
    return (await settledWithin(stopped, SLOW_STOP_MS)) ? c.body(null, 204) : c.body(null, 202);
  };
  api.post("/users/:name/server", serverRoute(false));
  api.delete("/users/:name/server", serverRoute(false));
  api.post("/users/:name/servers/:server", serverRoute(true));
  api.delete("/users/:name/servers/:server", serverRoute(true));

  const progressRoute = (named: boolean) => (c: Context<HubEnv>) => {
    const user = findUser(c);
    if (user instanceof Response) return user;
    const serverName = named ? (c.req.param("server") ?? "") : "";
    const who = need(c, "read:servers", { server: serverFilter(user.name, serverName) });
    if (who instanceof Response) return who;
    const server = store.getServer(user.id, serverName);
    if (!server) return apiError(c, 404, `${user.name} has no server named '${serverName}'`);
    return progressStream(c, hub, user, server);
  };
  api.get("/users/:name/server/progress", progressRoute(false));
  api.get("/users/:name/servers/:server/progress", progressRoute(true));

  // ---- tokens

  api.get("/users/:name/tokens", (c) => {
    const r = onUser(c, "read:tokens");
    if (r instanceof Response) return r;
    const { user } = r;
    return c.json({ api_tokens: store.listTokens(user.id).map((t) => tokenModel(t, user.name)) });
  });

  api.post("/users/:name/tokens", async (c) => {
    const r = onUser(c, "tokens");
    if (r instanceof Response) return r;
    const { user, who } = r;
    const raw = await jsonBody(c);
    const req = TokenRequest.safeParse(raw ?? {});
    if (!req.success) return apiError(c, 400, req.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "));
    const minted = mintToken(hub, who, user, {
      scopes: req.data.scopes,
      expiresInS: req.data.expires_in ?? null,
      note: req.data.note ?? (who.user.id === user.id ? "Requested via api" : `Requested via api by user ${who.user.name}`),
    });
    if (!minted.ok) return apiError(c, minted.status, minted.message);
    const { token, row } = minted;
    return c.json({ ...tokenModel(row, user.name), token }, 201);
  });

  const tokenById = (c: Context<HubEnv>, user: UserRow) => {
    const m = /^a(\d+)$/.exec(c.req.param("id") ?? "");
    const t = m ? store.getToken(Number(m[1])) : undefined;
    return t && t.user_id === user.id ? t : undefined;
  };

  api.get("/users/:name/tokens/:id", (c) => {
    const r = onUser(c, "read:tokens");
    if (r instanceof Response) return r;
    const { user } = r;
    const t = tokenById(c, user);
    return t ? c.json(tokenModel(t, user.name)) : apiError(c, 404, `No such token: ${c.req.param("id")}`);
  });

  api.delete("/users/:name/tokens/:id", (c) => {
    const r = onUser(c, "tokens");
    if (r instanceof Response) return r;
    const { user, who } = r;
    const t = tokenById(c, user);
    if (!t) return apiError(c, 404, `No such token: ${c.req.param("id")}`);
    store.deleteToken(t.id);
    hub.log.info("token revoked", { user: user.name, token_id: `a${t.id}`, by: who.user.name });
    return c.body(null, 204);
  });

  api.all("*", (c) => apiError(c, 404, `Not found: ${c.req.method} ${c.req.path}`));
  return api;
}

/** Spawn progress as server-sent events (spec §5.2): stored events, then live ones until the end. */
export function progressStream(c: Context, hub: Hub, user: UserRow, server: ServerRow): Response {
  const status = hub.lifecycle.status(server);
  const pending = status === "pending";
  const prefix = serverPrefix(user.name, server.name);
  if (status === "running") {
    const url = hub.store.spawnEvents(server.id, server.spawn_id).reverse().find((e) => (e as ProgressEvent).ready) as ProgressEvent | undefined;
    return sse([url ?? { progress: 100, ready: true, message: `Server ready at ${prefix}`, url: prefix }], undefined);
  }
  if (!pending) {
    const past = hub.store.spawnEvents(server.id, server.spawn_id) as ProgressEvent[];
    if (server.failure && past.some((e) => e.failed)) return sse(past, undefined);
    return apiError(c, 400, `${user.name} is not starting...`);
  }
  return sse(undefined, (push, end) => {
    const sub = hub.lifecycle.progress(server.id, (ev) => {
      push(ev);
      if (ev.ready || ev.failed) end();
    });
    for (const ev of sub.past) push(ev);
    if (sub.past.some((e) => e.ready || e.failed)) end();
    return sub.unsubscribe;
  });
}

function sse(
  events: object[] | undefined,
  live: ((push: (ev: object) => void, end: () => void) => () => void) | undefined,
): Response {
  const enc = new TextEncoder();
  let cleanup: (() => void) | undefined;
  let keepAlive: NodeJS.Timeout | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let closed = false;
      const end = () => {
        if (closed) return;
        closed = true;
        clearInterval(keepAlive);
        cleanup?.();
        controller.close();
      };
      const push = (ev: object) => {
        if (!closed) controller.enqueue(enc.encode(`data: ${JSON.stringify(ev)}\n\n`));
      };
      controller.enqueue(enc.encode("\n\n"));
      if (events) {
        events.forEach(push);
        end();
        return;
      }
      keepAlive = setInterval(() => !closed && controller.enqueue(enc.encode("\n\n")), 8000);
      cleanup = live!(push, end);
    },
    cancel() {
      clearInterval(keepAlive);
      cleanup?.();
    },
  });
  return new Response(body, {
    headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no" },
  });
}

