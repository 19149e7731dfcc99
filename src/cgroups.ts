// Memory and CPU of users' slices and servers' units, read from the cgroup file system at scrape time (for
// /hub/metrics). cgroupfs is world-readable, so the unprivileged web process reads it directly: no helper round
// trip, no subprocess. Bounded: at most MAX_SLICES user slices and MAX_UNITS units a slice are looked at.
//
// Where: systemd puts `slicehub.slice` at the root of the hierarchy it manages. That root is found from this
// process's own cgroup (/proc/self/cgroup): the path up to its first component that is a systemd unit
// (`system.slice/slicehub.service` under the host's systemd → the root; inside a container or a test sandbox,
// whatever prefix it has). cgroup v2 (memory.current, cpu.stat usage_usec) and v1 (memory.usage_in_bytes; CPU from
// the hybrid unified tree's cpu.stat, else cpuacct.usage) are both read; a figure a host does not account is left
// out.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const MAX_SLICES = 10_000;
const MAX_UNITS = 100;

export interface CgroupUsage {
  memoryBytes?: number;
  cpuSeconds?: number;
}

export interface ServerUsage extends CgroupUsage {
  /** Hub user name. */
  user: string;
  /** "" for the default server. */
  server: string;
}

export interface UsageSnapshot {
  users: (CgroupUsage & { user: string })[];
  servers: ServerUsage[];
}

/**
 * Where slicehub.slice is for memory and for CPU, and which file says it: the same directory under cgroup v2; under
 * v1 the memory controller's tree, and for CPU the hybrid unified tree's cpu.stat (which every cgroup has there)
 * or else the cpuacct controller's tree ("" when there is none).
 */
export interface CgroupLayout {
  memory: string;
  memoryFile: "memory.current" | "memory.usage_in_bytes";
  cpu: string;
  cpuFile: "cpu.stat" | "cpuacct.usage";
}

/** The inverse of systemdEscape (spawners/systemd/units.ts): `\xHH` back to its byte. */
export function systemdUnescape(s: string): string {
  if (!s.includes("\\x")) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const m = s[i] === "\\" && /^\\x([0-9a-f]{2})/i.exec(s.slice(i, i + 4));
    if (m) {
      bytes.push(parseInt(m[1]!, 16));
      i += 3;
    } else bytes.push(...Buffer.from(s[i]!, "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The root of the tree systemd manages, from a cgroup path: everything before its first unit component. */
export function managedRoot(path: string): string {
  const parts = path.split("/").filter(Boolean);
  const first = parts.findIndex((p) => /\.(slice|scope|service)$/.test(p));
  return `/${(first < 0 ? parts : parts.slice(0, first)).join("/")}`;
}

/**
 * The directories of slicehub.slice for memory and CPU, from /proc/self/cgroup's text; undefined when there is
 * no such hierarchy (no systemd, or cgroups not mounted where expected).
 */
export function findLayout(procSelfCgroup: string, fsRoot = "/sys/fs/cgroup"): CgroupLayout | undefined {
  const lines = procSelfCgroup.split("\n").filter(Boolean);
  const v1 = new Map<string, string>();
  let unified: string | undefined;
  for (const line of lines) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (controllers === "") unified = path;
    else for (const c of controllers.split(",")) v1.set(c, path);
  }
  if (v1.has("memory")) {
    // systemd takes the root of every controller's tree from its own hierarchy (name=systemd); a process may sit
    // elsewhere in a controller it does not use.
    const root = managedRoot(v1.get("name=systemd") ?? v1.get("memory")!);
    const memory = join(fsRoot, "memory", root, "slicehub.slice");
    // Hybrid mode: systemd keeps every unit in the unified tree too, where cpu.stat counts without a controller.
    if (unified !== undefined && readable(join(fsRoot, "unified"))) {
      return { memory, memoryFile: "memory.usage_in_bytes", cpu: join(fsRoot, "unified", managedRoot(unified), "slicehub.slice"), cpuFile: "cpu.stat" };
    }
    const cpuDir = ["cpu,cpuacct", "cpuacct"].map((d) => join(fsRoot, d)).find((d) => existsSync(join(d, "cpuacct.usage")));
    return { memory, memoryFile: "memory.usage_in_bytes", cpu: cpuDir ? join(cpuDir, root, "slicehub.slice") : "", cpuFile: "cpuacct.usage" };
  }
  if (unified !== undefined) {
    const dir = join(fsRoot, managedRoot(unified), "slicehub.slice");
    return { memory: dir, memoryFile: "memory.current", cpu: dir, cpuFile: "cpu.stat" };
  }
  return undefined;
}

function readable(dir: string): boolean {
  try {
    readdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

function readNumber(file: string): number | undefined {
  try {
    const v = readFileSync(file, "utf8").trim();
    return /^\d+$/.test(v) ? Number(v) : undefined;
  } catch {
    return undefined;
  }
}

function usageOf(layout: CgroupLayout, rel: string): CgroupUsage {
  const memoryBytes = readNumber(join(layout.memory, rel, layout.memoryFile));
  let cpuSeconds: number | undefined;
  if (layout.cpu && layout.cpuFile === "cpu.stat") {
    try {
      const m = /^usage_usec (\d+)$/m.exec(readFileSync(join(layout.cpu, rel, "cpu.stat"), "utf8"));
      if (m) cpuSeconds = Number(m[1]) / 1e6;
    } catch {
      // not accounted
    }
  } else if (layout.cpu) {
    const ns = readNumber(join(layout.cpu, rel, "cpuacct.usage"));
    if (ns !== undefined) cpuSeconds = ns / 1e9;
  }
  return { memoryBytes, cpuSeconds };
}

function list(dir: string, max: number): string[] {
  try {
    return readdirSync(dir).slice(0, max);
  } catch {
    return [];
  }
}

const USER_SLICE = /^slicehub-(.+)\.slice$/;

/**
 * Every user slice under slicehub.slice and every server unit in them, with what the kernel accounts. `isUser`
 * keeps only names the hub knows (the label values are hub user names, nothing a directory name could inject).
 */
export function readUsage(layout: CgroupLayout, isUser: (name: string) => boolean): UsageSnapshot {
  const out: UsageSnapshot = { users: [], servers: [] };
  // Under v1 a slice may exist only in the hierarchies of the controllers it uses: list both.
  const slices = new Set([...list(layout.memory, MAX_SLICES), ...(layout.cpu && layout.cpu !== layout.memory ? list(layout.cpu, MAX_SLICES) : [])]);
  for (const slice of slices) {
    const m = USER_SLICE.exec(slice);
    if (!m) continue;
    const escaped = m[1]!;
    const user = systemdUnescape(escaped);
    if (!isUser(user)) continue;
    out.users.push({ user, ...usageOf(layout, slice) });
    const unitPrefix = `slicehub-server-${escaped}`;
    const units = new Set([...list(join(layout.memory, slice), MAX_UNITS * 10), ...(layout.cpu && layout.cpu !== layout.memory ? list(join(layout.cpu, slice), MAX_UNITS * 10) : [])]);
    let n = 0;
    for (const unit of units) {
      if (!unit.startsWith(unitPrefix) || !unit.endsWith(".service")) continue;
      const rest = unit.slice(unitPrefix.length, -".service".length);
      // "-" inside names is escaped, so the only dash here is the one before a named server's name.
      if (rest !== "" && !rest.startsWith("-")) continue;
      if (++n > MAX_UNITS) break;
      out.servers.push({ user, server: systemdUnescape(rest.slice(1)), ...usageOf(layout, join(slice, unit)) });
    }
  }
  return out;
}

/** The layout of this process's cgroups, or undefined off Linux or without cgroups. */
export function ownLayout(): CgroupLayout | undefined {
  try {
    return findLayout(readFileSync("/proc/self/cgroup", "utf8"));
  } catch {
    return undefined;
  }
}
