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
  // The real hub sends logins for /user/… through /hub/user/… so a stopped server gets the start page.
  return next.startsWith("/user/") ? `/hub${next}` : next;
}
