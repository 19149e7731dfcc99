// Which server profiles a user may pick. Pure: the web process and the privileged helper both call it, and
// the helper's answer is the one that counts.
import type { Config, Profile } from "./config/schema.js";

export function profilesFor(cfg: Config, user: string): Profile[] {
  return cfg.spawner.profiles.filter((p) => {
    if (!p.users && !p.groups) return true;
    if (p.users?.includes(user)) return true;
    return (p.groups ?? []).some((g) => cfg.groups[g]?.includes(user));
  });
}

/**
 * The profile a start uses: the requested one if this user may use it, else (nothing requested) the first
 * they may use. Undefined when the config has no profiles. Throws with a message for the user otherwise.
 */
export function resolveProfile(cfg: Config, user: string, requested: string | undefined): Profile | undefined {
  if (cfg.spawner.profiles.length === 0) {
    if (requested) throw new Error(`this hub has no profiles, so "${requested}" cannot be chosen`);
    return undefined;
  }
  const allowed = profilesFor(cfg, user);
  if (requested === undefined) {
    const first = allowed[0];
    if (!first) throw new Error(`no server profile is open to ${user}; ask an admin`);
    return first;
  }
  const p = allowed.find((x) => x.name === requested);
  if (!p) throw new Error(`profile "${requested}" does not exist or is not open to ${user}`);
  return p;
}
