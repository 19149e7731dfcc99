// The routing table: which user server answers which /user/… path prefix, on which host.
//
// In path mode (the default) routes have no host: every user's server is a path on the hub's own host. In
// subdomain mode (config `subdomain_host`) each route also names its server's own host name, and answers only
// requests for that host: alice.users.example.org/user/alice/ reaches alice's server, hub.example.org/user/alice/
// does not (the hub redirects it there).

export interface Route {
  /** `/user/alice` or `/user/alice/foo`: escaped as in request paths, no trailing slash. */
  prefix: string;
  /** `http://127.0.0.1:45678` */
  target: string;
  serverId: number;
  /**
   * Subdomain mode: the host name (lower case, no port) this route answers on, e.g. `alice.users.example.org`.
   * Absent in path mode: the route answers on any host.
   */
  host?: string;
}

/** The table key of a route: its prefix, after its host when it has one. */
export function routeTableKey(prefix: string, host?: string): string {
  return host ? `${host}${prefix}` : prefix;
}

/** The host name of a Host header value, lower case, without its port: `Alice.Users.Test:8000` → `alice.users.test`. */
export function hostnameOf(hostHeader: string | undefined): string {
  if (!hostHeader) return "";
  const h = hostHeader.toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.indexOf(":");
  return colon < 0 ? h : h.slice(0, colon);
}

export class RouteTable {
  private readonly routes = new Map<string, Route>();
  private hosted = 0;

  set(route: Route): void {
    if (!route.prefix.startsWith("/") || route.prefix.endsWith("/")) {
      throw new Error(`route prefix ${JSON.stringify(route.prefix)}: must start with "/" and not end with "/"`);
    }
    if (route.host !== undefined && (route.host !== route.host.toLowerCase() || !/^[a-z0-9.-]+$/.test(route.host))) {
      throw new Error(`route host ${JSON.stringify(route.host)}: must be a lower-case host name without a port`);
    }
    const key = routeTableKey(route.prefix, route.host);
    const before = this.routes.get(key);
    if (before?.host) this.hosted--;
    if (route.host) this.hosted++;
    this.routes.set(key, route);
  }

  /** Removes the route of `prefix` (on `host`, for a subdomain-mode route). */
  delete(prefix: string, host?: string): boolean {
    const key = routeTableKey(prefix, host);
    const before = this.routes.get(key);
    if (before?.host) this.hosted--;
    return this.routes.delete(key);
  }

  get(prefix: string, host?: string): Route | undefined {
    return this.routes.get(routeTableKey(prefix, host));
  }

  /**
   * The route with the longest prefix that ends on a segment boundary of `rawPath` (a path without query):
   * `/user/alice` answers `/user/alice`, `/user/alice/` and `/user/alice/x`, never `/user/alicex`. A route
   * with a host answers only when `hostname` (see hostnameOf) is that host. One map lookup per segment, so the
   * cost does not grow with the number of routes.
   */
  lookup(rawPath: string, hostname?: string): Route | undefined {
    const withHost = this.hosted > 0 && hostname ? hostname : "";
    let path = rawPath;
    for (;;) {
      const route = (withHost && this.routes.get(withHost + path)) || this.routes.get(path);
      if (route) return route;
      const slash = path.lastIndexOf("/");
      if (slash <= 0) return undefined;
      path = path.slice(0, slash);
    }
  }

  list(): Route[] {
    return [...this.routes.values()];
  }

  get size(): number {
    return this.routes.size;
  }
}
