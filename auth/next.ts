// `next=` targets: only same-origin paths. Anything else (absolute URLs, scheme-relative `//host`,
// backslash tricks browsers normalise to `//`, control characters) falls back to the default.
export function safeNext(next: string | undefined | null, fallback = "/hub/home"): string {
  if (!next || next.length > 2048) return fallback;
  if (!next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return fallback;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\\]/.test(next)) return fallback;
  try {
    const u = new URL(next, "http://same.invalid");
    if (u.host !== "same.invalid") return fallback;
  } catch {
    return fallback;
  }
  // The real hub sends logins for /user/… through /hub/user/… so a stopped server gets the start page.
  return next.startsWith("/user/") ? `/hub${next}` : next;
}
