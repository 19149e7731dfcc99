// JupyterHub's REST API, the subset jupyterhub-singleuser, the idle culler and ordinary API clients use
// (docs/jupyterhub-compat.md). Errors are JSON {"status", "message"}; a bad token is always 403.
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import type { ProgressEvent } from "../lifecycle.js";
import { SERVER_NAME, USER_NAME, serverPrefix } from "../names.js";
import { scopeUsers } from "../scopes.js";
import type { ServerRow, UserRow } from "../store/store.js";
import { parseIso, settledWithin } from "../time.js";
import type { Hub, HubEnv } from "./context.js";
import { csrfProblem } from "./identify.js";
import { tokenModel, userModel } from "./models.js";
import { jsonBody, notAuthorized, refuse, requireScope, type ScopedEnv } from "./refuse.js";
import { ReplyMemo } from "./reply-memo.js";
import { sshKeyApi } from "./ssh-keys.js";
import { mintToken } from "./tokens.js";

const PAGINATION = "application/jupyterhub-pagination+json";
const SLOW_SPAWN_MS = 10_000;
const SLOW_STOP_MS = 10_000;

const ActivityBody = z
  .looseObject({
    last_activity: z.string().optional(),
    servers: z.record(z.string(), z.looseObject({ last_activity: z.string() })).optional(),
  })
  .refine((b) => b.last_activity !== undefined || b.servers !== undefined);

/** A server's user_options: any JSON object, none (an empty body) being {}. */
const UserOptions = z.record(z.string(), z.unknown());

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

/** The path's name, or a 400 before the body is read. */
const validName = (param: "name" | "server", pattern: RegExp, what: string): MiddlewareHandler<HubEnv> => async (c, next) => {
  const name = c.req.param(param) ?? "";
  if (!pattern.test(name)) refuse(400, `Invalid ${what} name: ${name}`);
  await next();
};

export function hubApi(hub: Hub): Hono<HubEnv> {
  const api = new Hono<HubEnv>();
  const { store, lifecycle } = hub;
  const memo = new ReplyMemo(hub);
  const JSON_TYPE = { "content-type": "application/json" };


  // Everything below needs a caller. An unknown, revoked or expired token is 403, never 401: the
  // single-user server treats any other 4xx as a hard failure.
  api.use("*", async (c, next) => {
    if (c.req.path.startsWith("/hub/api/oauth2/")) return next();
    const who = c.get("who");
    if (!who) refuse(403, "Forbidden");
    const bad = csrfProblem(c, who, hub.config().public_url);
    if (bad) refuse(403, bad);
    return next();
  });

  /** The route's scope check; with a target, the user the path names is `c.get("user")` (404 before 403). */
  const scoped = (scope: string, target?: "user" | "server") => requireScope(hub, scope, target);

  api.get("/user", (c) => {
    const who = c.get("who")!;
    const model = userModel(store, lifecycle, who.user, who.scopes, { subdomainHost: hub.config().subdomain_host });
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
    if (reach !== "all" && reach.size === 0) refuse(403, notAuthorized("list:users"));
    const state = c.req.query("state");
    if (state !== undefined && state !== "active" && state !== "ready" && state !== "inactive") {
      refuse(400, `Unrecognized state filter: '${state}'`);
    }
    const page = PageQuery.safeParse({ offset: c.req.query("offset"), limit: c.req.query("limit"), name_filter: c.req.query("name_filter") });
    if (!page.success) refuse(400, page.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const paginated = (c.req.header("accept") ?? "").split(",").some((a) => a.trim().split(";")[0] === PAGINATION);
    const key = ReplyMemo.key(who, `${paginated ? "p" : "l"} ${c.req.url}`);
    const kept = key && memo.get(key);
    if (kept) return c.body(kept, 200, JSON_TYPE);
    const maxLimit = 200;
    const limit = Math.min(maxLimit, Math.max(1, page.data.limit ?? (paginated ? 50 : maxLimit)));
    const offset = page.data.offset ?? 0;
    const nameFilter = page.data.name_filter || undefined;
    let users: UserRow[];
    // The total is counted only for a paginated reply, which is the only one that reports it.
    let total: () => number;
    if (reach === "all") {
      users = store.pageOfUsers({ state, nameFilter, offset, limit });
      total = () => store.countUsers({ state, nameFilter });
    } else {
      const visible = store.pageOfUsers({ state, nameFilter, offset: 0, limit: 1_000_000 }).filter((u) => reach.has(u.name));
      total = () => visible.length;
      users = visible.slice(offset, offset + limit);
    }
    // The page's servers in one query, not one per user.
    const servers = store.listServersOf(users.map((u) => u.id));
    const includeStopped = c.req.query("include_stopped_servers") !== undefined;
    const subdomainHost = hub.config().subdomain_host;
    const items = users.map((u) => userModel(store, lifecycle, u, who.scopes, { includeStopped, servers: servers.get(u.id), subdomainHost }));
    let reply: unknown = items;
    if (paginated) {
      const nextOffset = offset + limit;
      let next: object | null = null;
      const count = total();
      if (nextOffset < count) {
        const url = new URL(c.req.url);
        url.searchParams.set("offset", String(nextOffset));
        url.searchParams.set("limit", String(limit));
        next = { offset: nextOffset, limit, url: url.href };
      }
      reply = { items, _pagination: { offset, limit, total: count, next } };
    }
    const body = JSON.stringify(reply);
    if (key) memo.set(key, body, [...servers.values()].flat());
    return c.body(body, 200, JSON_TYPE);
  });

  api.get("/users/:name", scoped("read:users:name", "user"), (c) => {
    const who = c.get("who")!;
    const key = ReplyMemo.key(who, c.req.url);
    const kept = key && memo.get(key);
    if (kept) return c.body(kept, 200, JSON_TYPE);
    const user = c.get("user");
    const servers = store.listServers(user.id);
    const body = JSON.stringify(userModel(store, lifecycle, user, who.scopes, { includeStopped: c.req.query("include_stopped_servers") !== undefined, servers, subdomainHost: hub.config().subdomain_host }));
    if (key) memo.set(key, body, servers);
    return c.body(body, 200, JSON_TYPE);
  });

  api.post(
    "/users/:name",
    scoped("admin:users"),
    validName("name", USER_NAME, "user"),
    jsonBody(CreateUser, 'body must be a JSON object like {"admin": false}'),
    (c) => {
      const who = c.get("who")!;
      const name = c.req.param("name");
      const user = store.createUser(name, c.req.valid("json").admin ?? false);
      if (!user) refuse(409, `User ${name} already exists`);
      hub.log.info("user created", { user: name, by: who.user.name });
      return c.json(userModel(store, lifecycle, user, who.scopes, { subdomainHost: hub.config().subdomain_host }), 201);
    },
  );

  api.delete("/users/:name", scoped("delete:users", "user"), async (c) => {
    const who = c.get("who")!;
    const user = c.get("user");
    if (who.user.id === user.id) refuse(400, "Cannot delete yourself");
    const servers = store.listServers(user.id);
    if (servers.some((s) => lifecycle.status(s) === "stopping")) refuse(400, `${user.name}'s server is in the process of stopping, please wait.`);
    await Promise.all(servers.map((s) => lifecycle.remove(user, s)));
    store.deleteUser(user.id);
    await hub.sshEnd?.(user.name).catch((err: unknown) => hub.log.error("could not end SSH sessions", { user: user.name, error: err }));
    void hub.terminals?.endUser(user.name, "Your access to this hub has ended.", who.user.name);
    hub.log.info("user deleted", { user: user.name, by: who.user.name });
    return c.body(null, 204);
  });

  api.post(
    "/users/:name/activity",
    scoped("users:activity", "user"),
    jsonBody(ActivityBody, "body must contain at least one of `last_activity` or `servers`"),
    (c) => {
      const user = c.get("user");
      const body = c.req.valid("json");
      const limit = Date.now() + 59 * 60_000;
      const when = (s: string): number => {
        const t = parseIso(s);
        if (Number.isNaN(t)) refuse(400, `Invalid timestamp: ${s}`);
        if (t > limit) refuse(400, `last_activity ${s} is more than an hour in the future`);
        return t;
      };
      const updates: [ServerRow, number][] = [];
      for (const [name, v] of Object.entries(body.servers ?? {})) {
        const server = store.getServer(user.id, name);
        if (!server) refuse(400, `No such server '${name}' for user ${user.name}`);
        updates.push([server, when(v.last_activity)]);
      }
      const userTime = body.last_activity !== undefined ? when(body.last_activity) : undefined;
      store.transaction(() => {
        for (const [s, t] of updates) store.touchServer(s.id, t);
        if (userTime !== undefined) store.touchUser(user.id, userTime);
      });
      return c.body(null, 200);
    },
  );

  // ---- servers

  // Whether named servers are enabled, and their limit, are the lifecycle's to check, after the body is
  // read, in the same step that records the start.
  const startServer = async (c: Context<ScopedEnv>, serverName: string, options: Record<string, unknown>) => {
    const user = c.get("user");
    const existing = store.getServer(user.id, serverName);
    if (existing && lifecycle.status(existing) === "pending") return c.body(null, 202);
    const started = lifecycle.start(user, serverName, options);
    if (!started.ok) refuse(started.status, started.message);
    if (!(await settledWithin(started.done, SLOW_SPAWN_MS))) return c.body(null, 202);
    const after = store.getServer(user.id, serverName);
    if (after?.state === "running") return c.body(null, 201);
    refuse(500, after?.failure ?? "Spawn failed");
  };
  const userOptions = jsonBody(UserOptions, "user_options must be a JSON object");
  api.post("/users/:name/server", scoped("servers", "server"), userOptions, (c) => startServer(c, "", c.req.valid("json")));
  api.post("/users/:name/servers/:server", scoped("servers", "server"), validName("server", SERVER_NAME, "server"), userOptions, (c) =>
    startServer(c, c.req.param("server"), c.req.valid("json")),
  );

  const stopServer = (named: boolean) => async (c: Context<ScopedEnv>) => {
    const user = c.get("user");
    const serverName = named ? (c.req.param("server") ?? "") : "";
    const server = store.getServer(user.id, serverName);
    // Only {"remove": true} means anything here; any other body, JSON or not, is none.
    const text = await c.req.text();
    let remove = false;
    try {
      remove = (JSON.parse(text) as { remove?: unknown } | null)?.remove === true;
    } catch {
      remove = false;
    }
    if (remove && !named) refuse(400, "Cannot remove the default server");
    if (!server) return named ? refuse(404, `${user.name} has no server named '${serverName}'`) : c.body(null, 204);
    const stopped = remove ? lifecycle.remove(user, server) : lifecycle.stop(user, server);
    return (await settledWithin(stopped, SLOW_STOP_MS)) ? c.body(null, 204) : c.body(null, 202);
  };
  api.delete("/users/:name/server", scoped("delete:servers", "server"), stopServer(false));
  api.delete("/users/:name/servers/:server", scoped("delete:servers", "server"), stopServer(true));

  const progress = (c: Context<ScopedEnv>) => {
    const user = c.get("user");
    const serverName = c.req.param("server") ?? "";
    const server = store.getServer(user.id, serverName);
    if (!server) refuse(404, `${user.name} has no server named '${serverName}'`);
    return progressStream(c, hub, user, server);
  };
  api.get("/users/:name/server/progress", scoped("read:servers", "server"), progress);
  api.get("/users/:name/servers/:server/progress", scoped("read:servers", "server"), progress);

  // ---- tokens

  api.get("/users/:name/tokens", scoped("read:tokens", "user"), (c) => {
    const user = c.get("user");
    return c.json({ api_tokens: store.listTokens(user.id).map((t) => tokenModel(t, user.name)) });
  });

  api.post(
    "/users/:name/tokens",
    scoped("tokens", "user"),
    // A body that is not JSON at all keeps the message it has always had.
    jsonBody(TokenRequest, (issues) =>
      issues.length ? issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ") : "body: Invalid input: expected object, received symbol",
    ),
    (c) => {
      const who = c.get("who")!;
      const user = c.get("user");
      const req = c.req.valid("json");
      const minted = mintToken(hub, who, user, {
        scopes: req.scopes,
        expiresInS: req.expires_in ?? null,
        note: req.note ?? (who.user.id === user.id ? "Requested via api" : `Requested via api by user ${who.user.name}`),
      });
      if (!minted.ok) refuse(minted.status, minted.message);
      const { token, row } = minted;
      return c.json({ ...tokenModel(row, user.name), token }, 201);
    },
  );

  /** The path's token, if it is the path user's; else 404. */
  const tokenById = (c: Context<ScopedEnv>) => {
    const m = /^a(\d+)$/.exec(c.req.param("id") ?? "");
    const t = m ? store.getToken(Number(m[1])) : undefined;
    if (!t || t.user_id !== c.get("user").id) refuse(404, `No such token: ${c.req.param("id")}`);
    return t;
  };

  api.get("/users/:name/tokens/:id", scoped("read:tokens", "user"), (c) => c.json(tokenModel(tokenById(c), c.get("user").name)));

  api.delete("/users/:name/tokens/:id", scoped("tokens", "user"), (c) => {
    const user = c.get("user");
    const t = tokenById(c);
    store.deleteToken(t.id);
    hub.log.info("token revoked", { user: user.name, token_id: `a${t.id}`, by: c.get("who")!.user.name });
    return c.body(null, 204);
  });

  sshKeyApi(api, hub);

  api.all("*", (c) => refuse(404, `Not found: ${c.req.method} ${c.req.path}`));
  return api;
}

/** Spawn progress as server-sent events (JupyterHub's progress events): stored events, then live ones until the end. */
export function progressStream(c: Context, hub: Hub, user: UserRow, server: ServerRow): Response {
  const status = hub.lifecycle.status(server);
  const prefix = serverPrefix(user.name, server.name);
  if (status === "running") {
    const url = hub.store.spawnEvents(server.id, server.spawn_id).reverse().find((e) => (e as ProgressEvent).ready) as ProgressEvent | undefined;
    return sse(c, [url ?? { progress: 100, ready: true, message: `Server ready at ${prefix}`, url: prefix }]);
  }
  if (status !== "pending") {
    const past = hub.store.spawnEvents(server.id, server.spawn_id) as ProgressEvent[];
    if (server.failure && past.some((e) => e.failed)) return sse(c, past);
    refuse(400, `${user.name} is not starting...`);
  }
  return sse(c, undefined, (push, end) => {
    const sub = hub.lifecycle.progress(server.id, (ev) => {
      push(ev);
      if (ev.ready || ev.failed) end();
    });
    for (const ev of sub.past) push(ev);
    if (sub.past.some((e) => e.ready || e.failed)) end();
    return sub.unsubscribe;
  });
}

const KEEP_ALIVE_MS = 8000;

/**
 * `events` and the end, or live events: `live` subscribes, pushes and calls `end` after the last, and returns
 * its unsubscribe, called at the end or when the client goes away. Like JupyterHub: "\n\n" first and every
 * 8 s (a proxy may hold back a response until its first bytes, or close an idle one), each event one
 * `data: {json}` line.
 */
function sse(c: Context, events: object[] | undefined, live?: (push: (ev: object) => void, end: () => void) => () => void): Response {
  c.header("X-Accel-Buffering", "no");
  return streamSSE(c, async (stream) => {
    // Writes wait for the client to read; a chain keeps them in order without holding up the pushes.
    let writes = stream.write("\n\n").then(() => undefined);
    const queue = (write: () => Promise<unknown>) => {
      writes = writes.then(write).then(() => undefined);
    };
    const send = (ev: object) => queue(() => stream.writeSSE({ data: JSON.stringify(ev) }));
    if (!live) {
      (events ?? []).forEach(send);
      return writes;
    }
    await new Promise<void>((resolve) => {
      let done = false;
      let unsubscribe: (() => void) | undefined;
      const keepAlive = setInterval(() => queue(() => stream.write("\n\n")), KEEP_ALIVE_MS);
      const end = () => {
        if (done) return;
        done = true;
        clearInterval(keepAlive);
        unsubscribe?.();
        void writes.then(resolve);
      };
      stream.onAbort(end);
      unsubscribe = live((ev) => !done && send(ev), end);
      if (done) unsubscribe();
    });
  });
}
