// Dropping root in the web-facing process. Called after the listener is bound and the privileged helper
// has been forked, so nothing that faces the network keeps root.
import { chownSync, lstatSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** Create the state directory and hand it (and everything in it) to the unprivileged user. */
export function prepareStateDir(dir: string, uid: number, gid: number): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const walk = (path: string) => {
    const st = lstatSync(path);
    if (st.uid !== uid || st.gid !== gid) chownSync(path, uid, gid);
    if (st.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
  };
  walk(dir);
}

export function dropPrivileges(user: { name: string; uid: number; gid: number }): void {
  if (user.uid === 0) throw new Error(`run_as names ${user.name}, which is root; that would defeat the point`);
  // Supplementary groups first (needs root), then the group, then the user: the other order cannot be undone.
  process.setgroups!([]);
  process.setgid!(user.gid);
  process.setuid!(user.uid);
  if (process.getuid!() !== user.uid || process.geteuid!() !== user.uid || process.getgid!() !== user.gid || process.getgroups!().some((g) => g !== user.gid)) {
    throw new Error("dropping privileges did not take");
  }
}
