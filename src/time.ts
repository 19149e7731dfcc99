// Formatting (Date#toISOString) was most of a user model's cost: 51 users' two timestamps took ~57 µs of a
// GET /hub/api/users. Most are the same from one request to the next (created, last activity), so the
// strings are kept, up to a bound.
const isoCache = new Map<number, string>();
const ISO_CACHE_MAX = 8_192;

/** JupyterHub's timestamp format: UTC, microseconds, literal Z (e.g. 2026-11-22T22:09:57.337000Z). */
export function isoZ(ms: number | null | undefined): string | null {
  if (ms === null || ms === undefined) return null;
  let s = isoCache.get(ms);
  if (s === undefined) {
    if (isoCache.size >= ISO_CACHE_MAX) isoCache.clear();
    s = new Date(ms).toISOString().replace(/Z$/, "000Z");
    isoCache.set(ms, s);
  }
  return s;
}

/** Parse an ISO-8601 timestamp; a naive one (no zone) is UTC, as JupyterHub does. NaN when invalid. */
export function parseIso(s: string): number {
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/i.test(s);
  // Date.parse keeps only milliseconds; trim longer fractions so microsecond stamps parse everywhere.
  const trimmed = s.replace(/(\.\d{3})\d+/, "$1");
  if (!/^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?/.test(trimmed)) return NaN;
  return Date.parse(hasZone ? trimmed : `${trimmed.replace(" ", "T")}Z`);
}

/** Wait for a promise at most `ms` (its outcome ignored); true when it settled in time. */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const settled = p.then(
    () => true,
    () => true,
  );
  const r = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  return r;
}
