// Refusing a request by throwing: a handler or middleware says `refuse(status, message)` and the app's one
// onError (main/app.ts) answers it, as JSON {status, message} under /hub/api and as the error page elsewhere.
// An answer with its own shape (OAuth's {error, error_description}) is thrown as an HTTPException with `res`.
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ZodType, z } from "zod";
import { serverFilter } from "../names.js";
import { hasScope } from "../scopes.js";
import type { UserRow } from "../store/store.js";
import type { Hub, HubEnv } from "./context.js";

/** A deliberate refusal with a message for the client, at any status (a failed spawn is a 500 that says why). */
export class Refusal extends HTTPException {
  constructor(status: number, message: string, readonly as?: "page") {
    super(status as 400, { message });
  }
}

/** Ends the request with `status` and `message`: JSON under /hub/api, the error page elsewhere. */
export function refuse(status: number, message: string): never {
  throw new Refusal(status, message);
}

/** The same, always as the error page (a browser's step under /hub/api, such as OAuth's authorize). */
export function refusePage(status: number, message: string): never {
  throw new Refusal(status, message, "page");
}

/** The path's user, once a route has checked it exists (see requireScope). */
export type ScopedEnv = { Bindings: HubEnv["Bindings"]; Variables: HubEnv["Variables"] & { user: UserRow } };

/**
 * The caller must hold `scope`. With a target, on the user the path names (`:name`), or on its server
 * (`:name` and `:server`, the default server without one): that user is looked up first and 404 if there is
 * none, before the 403, like JupyterHub, and is then `c.get("user")`.
 */
export function requireScope(hub: Hub, scope: string, target?: "user" | "server"): MiddlewareHandler<ScopedEnv> {
  return async (c, next) => {
    const who = c.get("who")!;
    if (target) {
      const name = c.req.param("name") ?? "";
      const user = hub.store.getUser(name);
      if (!user) refuse(404, `No such user: ${name}`);
      c.set("user", user);
      const on = target === "user" ? { user: user.name } : { server: serverFilter(user.name, c.req.param("server") ?? "") };
      if (!hasScope(who.scopes, scope, on)) refuse(403, notAuthorized(scope));
    } else if (!hasScope(who.scopes, scope)) {
      refuse(403, notAuthorized(scope));
    }
    await next();
  };
}

export const notAuthorized = (scope: string) => `Action is not authorized with current scopes; requires any of [${scope}]`;

/**
 * A JSON body checked against `schema`, for `c.req.valid("json")`. Read whatever the Content-Type (the
 * single-user server and scripts post JSON without one), so not hono/validator's "json" target, which
 * skips bodies without a JSON Content-Type and refuses an empty one. An empty body is `empty`; a malformed
 * one, or one `schema` refuses, is 400 with `message`.
 */
export function jsonBody<S extends ZodType>(
  schema: S,
  message: string | ((issues: z.core.$ZodIssue[]) => string),
  empty: unknown = {},
): MiddlewareHandler<HubEnv, string, { in: { json: unknown }; out: { json: z.output<S> } }> {
  const say = (issues: z.core.$ZodIssue[]) => (typeof message === "string" ? message : message(issues));
  return async (c, next) => {
    const text = await c.req.text();
    let body: unknown = empty;
    if (text.trim()) {
      try {
        body = JSON.parse(text) as unknown;
      } catch {
        refuse(400, say([]));
      }
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) refuse(400, say(parsed.error.issues));
    c.req.addValidatedData("json", parsed.data as object);
    await next();
  };
}
