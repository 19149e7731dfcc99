// A cookie-jar client walking the OIDC redirects between the hub and the test IdP, shared by the OIDC e2e tests.
import type { Browser } from "../e2e/harness.js";

/** Follows redirects across the hub and the IdP; remembers the callback URL the provider sent us to. */
export async function go(b: Browser, start: string, stopAtCallback = false): Promise<{ res: Response; url: URL; callback?: URL }> {
  let url = new URL(start, b.base);
  let callback: URL | undefined;
  for (let hops = 0; hops < 20; hops++) {
    if (url.pathname === "/hub/oauth_callback") {
      callback = url;
      if (stopAtCallback) return { res: new Response(null), url, callback };
    }
    const res = await b.request(url.href);
    const location = res.headers.get("location");
    if (res.status < 300 || res.status >= 400 || !location) return { res, url, callback };
    await res.arrayBuffer();
    url = new URL(location, url);
  }
  throw new Error(`too many redirects from ${start}`);
}

export const loginAs = (b: Browser, hint: string, next?: string) =>
  go(b, `/hub/oauth_login?login_hint=${encodeURIComponent(hint)}${next === undefined ? "" : `&next=${encodeURIComponent(next)}`}`);
