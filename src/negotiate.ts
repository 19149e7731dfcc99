// JupyterHub's rule for answering an error as JSON or as a page: JSON for paths with an `api` segment and for
// clients that rank JSON above HTML. The proxy's 503 and the hub's "server not running" answers both use it.
const API_SEGMENT = /\/api(\/|$)/;

export function prefersJson(path: string, accept: string | undefined): boolean {
  if (API_SEGMENT.test(path)) return true;
  let json = 0;
  let html = 0;
  for (const range of (accept ?? "").split(",")) {
    const [type = "", ...params] = range.split(";").map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith("q="));
    const weight = q ? Number(q.slice(2)) || 0 : 1;
    if (type === "application/json") json = Math.max(json, weight);
    else if (type === "text/html") html = Math.max(html, weight);
  }
  return json > html;
}
