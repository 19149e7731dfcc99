// The only tests CI lets be skipped. Under CI (or SLICEHUB_REQUIRE_ALL_TIERS=1) test/summary-reporter.ts counts
// any other skipped test as a failure, so that a green run means every tier (systemd, Chromium, the real
// jupyterhub-singleuser, ...) really ran. Keep this list short: an entry is a test that cannot run on CI's
// machine by its nature, never one whose tool CI merely forgot to install (install that in .ci/run instead).
//
// An entry matches on the file (relative to the repository root) and the test's full name (its describe
// blocks and its own name joined by " > ", as Vitest prints it); `when`, if given, limits the allowance to the
// machines where it is true.

export interface AllowedSkip {
  file: string;
  test: string;
  /** Why this test cannot run there; printed next to the skip. */
  why: string;
  /** The skip is allowed only where this holds (e.g. only as root). */
  when?: () => boolean;
}

export const ALLOWED_SKIPS: readonly AllowedSkip[] = [
  {
    // CI runs as root (the systemd tier needs it), and root reads any file whatever its mode, so the EACCES
    // this test expects can only be produced by a normal user. It runs on any developer's non-root checkout.
    file: "test/config/load.test.ts",
    test: "loadConfigFile > reports a file in an unreadable directory",
    why: "root reads any file regardless of its mode; EACCES needs a non-root user",
    when: () => process.getuid?.() === 0,
  },
];
