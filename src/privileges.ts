// Dropping root in the web-facing process. Called after the listener is bound and the privileged helper
// has been forked, so nothing that faces the network keeps root.
import { closeSync, constants, fchownSync, fstatSync, lchownSync, lstatSync, mkdirSync, openSync, readdirSync } from "node:fs";

const OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
// Non-blocking and no controlling tty: the entry may have been swapped for a FIFO or a device meanwhile.
const OPEN_FILE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * Create the state directory and hand it (and everything in it) to the unprivileged user.
 *
 * Runs as root over a tree that user owned during the last run, so it may hold symlinks and hard links
 * planted to make root chown something else: symlinks are changed themselves (lchown), never followed or
 * walked into; anything with other hard links is left alone; each directory is opened without following
 * symlinks and its entries are reached through that open directory (/proc/self/fd/N/name), so renaming a
 * directory into a symlink while the walk runs redirects nothing; and regular files are changed through a
 * descriptor, after checking what was opened.
 */
export function prepareStateDir(dir: string, uid: number, gid: number): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // The directory itself is the admin's choice and may be a symlink; below it, nothing is followed.
  const walk = (fd: number) => {
    const st = fstatSync(fd);
    if (st.uid !== uid || st.gid !== gid) fchownSync(fd, uid, gid);
    const at = `/proc/self/fd/${fd}`;
    for (const name of readdirSync(at)) {
      const entry = `${at}/${name}`;
      const est = lstatSync(entry);
      if (est.isDirectory()) {
        const child = openDir(entry);
        if (child === undefined) continue;
        try {
          walk(child);
        } finally {
          closeSync(child);
        }
      } else if ((est.uid !== uid || est.gid !== gid) && est.nlink === 1) {
        if (est.isFile()) chownFile(entry, uid, gid);
        else lchownSync(entry, uid, gid);
      }
    }
  };
  const top = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    walk(top);
  } finally {
    closeSync(top);
  }
}

/** Through an open descriptor, so what is changed is the single-link regular file that was checked. */
function chownFile(path: string, uid: number, gid: number): void {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FILE);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "ENOENT") return; // replaced or removed since it was looked at
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (st.isFile() && st.nlink === 1) fchownSync(fd, uid, gid);
  } finally {
    closeSync(fd);
  }
}

/** undefined when the entry stopped being a directory since it was looked at (replaced by a symlink, say). */
function openDir(path: string): number | undefined {
  try {
    return openSync(path, OPEN_DIR);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "ENOTDIR" || code === "ENOENT") return undefined;
    throw e;
  }
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
