// `next=` targets: only same-origin paths. Anything else (absolute URLs, scheme-relative `//host`,
// backslash tricks browsers normalise to `//`, control characters) falls back to the default, and so does a
// target longer than MAX_NEXT_BYTES.

/**
 * Real targets are a path and a short query. The cap is in UTF-8 bytes because the target travels in the
 * sealed OIDC state cookie, which must stay well under the 4 KB browsers keep.
 */
export const MAX_NEXT_BYTES = 1024;

export function safeNext(next: string | undefined | null, fallback = "/hub/home"): string {
  if (!next || next.length > MAX_NEXT_BYTES || Buffer.byteLength(next, "utf8") > MAX_NEXT_BYTES) return fallback;
  if (!next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return fallback;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\\]/.test(next)) return fallback;
  try {
    const u = new URL(next, "http://same.invalid");
    if (u.host !== "same.invalid") return fallback;
  } catch {
    return fallback;
  }
  // A /user/… target is kept as it is, as current JupyterHub (5.x) does (3.0 sent it through /hub/user/…, one
  // more hop that ended in ?redirects=1): the proxy takes it to a running server at once, and for one that is
  // not running the hub answers it (GET /user/… → /hub/user/…, the start page).
  return next;
}
