// Every value a Cookie header carries for one name. On one origin a user's page can set ("toss") cookies
// with the hub's cookie names for other paths or with a Domain, so a name can arrive several times; hono's
// getCookie returns only one of them, which a tossed garbage value would shadow (logging the victim out) or
// a tossed valid one would win (logging the victim into the attacker's session). Callers try each value.

/** At most this many values of one name are considered, the last ones (see sessionValues' ordering). */
export const MAX_COOKIE_VALUES = 16;

/**
 * The values of every `name=value` pair with exactly this name, in header order (browsers list longer paths
 * first, then older cookies first). Quotes around a value are dropped and %-escapes decoded, as hono does
 * when it reads a cookie; a value whose escapes are malformed is kept as written.
 */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (!header) return [];
  const values: string[] = [];
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=");
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (value.includes("%")) {
      try {
        value = decodeURIComponent(value);
      } catch {
        // kept as written: it matches nothing the hub issued
      }
    }
    values.push(value);
  }
  return values;
}

/**
 * The values to try, most preferred first: the last one in the header first. The hub's own cookie has the
 * shortest path (`/`) and browsers list longer paths first, so a cookie tossed onto a longer path comes before
 * it; one with the same name and path cannot be set from JavaScript while the hub's HttpOnly one exists.
 * Bounded so a header stuffed with copies costs a few lookups, not hundreds.
 */
export function preferredValues(header: string | undefined, name: string, maxLength = Infinity): string[] {
  return cookieValues(header, name)
    .filter((v) => v !== "" && v.length <= maxLength)
    .slice(-MAX_COOKIE_VALUES)
    .reverse();
}
