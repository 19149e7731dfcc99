// The routing table: which user server answers which /user/… path prefix.

export interface Route {
  /** `/user/alice` or `/user/alice/foo`: escaped as in request paths, no trailing slash. */
  prefix: string;
  /** `http://127.0.0.1:45678` */
  target: string;
  serverId: number;
}

export class RouteTable {
  private readonly routes = new Map<string, Route>();

  set(route: Route): void {
    if (!route.prefix.startsWith("/") || route.prefix.endsWith("/")) {
      throw new Error(`route prefix ${JSON.stringify(route.prefix)}: must start with "/" and not end with "/"`);
    }
    this.routes.set(route.prefix, route);
  }

  delete(prefix: string): boolean {
    return this.routes.delete(prefix);
  }

  get(prefix: string): Route | undefined {
    return this.routes.get(prefix);
  }

  /**
   * The route with the longest prefix that ends on a segment boundary of `rawPath` (a path without query):
   * `/user/alice` answers `/user/alice`, `/user/alice/` and `/user/alice/x`, never `/user/alicex`.
   * One map lookup per segment, so the cost does not grow with the number of routes.
   */
  lookup(rawPath: string): Route | undefined {
    let path = rawPath;
    for (;;) {
      const route = this.routes.get(path);
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
