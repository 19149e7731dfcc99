import type { Child } from "hono/jsx";

export interface PageUser {
  name: string;
  admin: boolean;
}

export function Layout(props: { title: string; user?: PageUser; children?: Child; head?: Child }) {
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
              <a href="/hub/home">Home</a>
              <span class="muted">{props.user.name}</span>
              <a href="/hub/logout">Log out</a>
            </nav>
          ) : null}
        </header>
        <main>{props.children}</main>
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
