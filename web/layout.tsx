// The page frame every hub page shares, the error page, and the two things every page handler needs:
// who is asking (for the header) and a POSTed form checked against the session's CSRF token.
import type { Context, MiddlewareHandler } from "hono";
import type { Child } from "hono/jsx";
import type { ZodType } from "zod";
import type { Hub, HubEnv, Who } from "../src/hub/context.js";
import { bodyTooLarge } from "../src/hub/body-limit.js";
import { csrfProblem } from "../src/hub/identify.js";
import { refuse } from "../src/hub/refuse.js";

export interface PageUser {
  name: string;
  admin: boolean;
}

export const pageUser = (who: Who | undefined): PageUser | undefined => (who ? { name: who.user.name, admin: !!who.user.admin } : undefined);

type Section = "home" | "token" | "ssh-keys" | "admin";

/** `wide`: for pages whose tables need more than a comfortable reading width. */
export function Layout(props: { title: string; user?: PageUser; section?: Section; wide?: boolean; children?: Child; head?: Child }) {
  const link = (section: Section, href: string, label: string) => (
    <a href={href} aria-current={props.section === section ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · slicehub</title>
        <link rel="stylesheet" href="/hub/static/style.css" />
        <link rel="icon" href="/hub/favicon.ico" type="image/svg+xml" />
        {props.head}
      </head>
      <body>
        <header>
          <a class="brand" href="/hub/home">
            slicehub
          </a>
          {props.user ? (
            <nav>
              {link("home", "/hub/home", "Home")}
              {link("token", "/hub/token", "Tokens")}
              {link("ssh-keys", "/hub/ssh-keys", "SSH keys")}
              {props.user.admin ? link("admin", "/hub/admin", "Admin") : null}
              <span class="who">{props.user.name}</span>
              <a href="/hub/logout">Log out</a>
            </nav>
          ) : null}
        </header>
        <main class={props.wide ? "wide" : undefined}>{props.children}</main>
      </body>
    </html>
  );
}

export function ErrorPage(props: { status: number; message: string; user?: PageUser }) {
  const titles: Record<number, string> = { 400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed", 500: "Something went wrong" };
  const title = titles[props.status] ?? `Error ${props.status}`;
  return (
    <Layout title={title} user={props.user}>
      <div class="card">
        <h1>
          {props.status} {title}
        </h1>
        <p>{props.message}</p>
        <p>
          <a href="/hub/home">Back to the home page</a>
        </p>
      </div>
    </Layout>
  );
}

export function errorPage(c: Context<HubEnv>, status: number, message: string): Response | Promise<Response> {
  return c.html(<ErrorPage status={status} message={message} user={pageUser(c.get("who"))} />, status as 400);
}

/** A one-button form that changes state, carrying the session's CSRF token. */
export function PostButton(props: { action: string; xsrf: string; class?: string; label: string; fields?: Record<string, string> }) {
  return (
    <form method="post" action={props.action}>
      <input type="hidden" name="_xsrf" value={props.xsrf} />
      {Object.entries(props.fields ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button class={props.class} type="submit">
        {props.label}
      </button>
    </form>
  );
}

/**
 * The fields of a POSTed form from a logged-in browser, for `c.req.valid("form")`, or the error page refusing
 * it: a wrong or missing `_xsrf` (or a foreign Origin) is 403, an unreadable body or fields that fail
 * `schema` are 400. (Not hono/validator's "form" target: it would answer a body over the cap with a 400
 * instead of the 413.)
 */
export function postedForm<T>(hub: Hub, schema: ZodType<T>): MiddlewareHandler<HubEnv, string, { in: { form: unknown }; out: { form: T } }> {
  return async (c, next) => {
    const body = await c.req.parseBody().catch((err: unknown) => {
      if (bodyTooLarge(err)) throw err;
      return undefined;
    });
    if (!body) refuse(400, "The form could not be read. Reload the page and try again.");
    const bad = csrfProblem(c, c.get("who")!, hub.config().public_url, typeof body._xsrf === "string" ? body._xsrf : "");
    if (bad) refuse(403, `Refused: ${bad}. Reload the page and try again.`);
    const form = schema.safeParse(body);
    if (!form.success) refuse(400, "The form was incomplete. Reload the page and try again.");
    c.req.addValidatedData("form", form.data as Record<string, unknown>);
    await next();
  };
}
