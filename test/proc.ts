// Is a process (or a process group) still alive, read from /proc. Zombies count as gone: orphans of a killed
// parent are reaped by whatever pid 1 is here, and on this test machine that takes seconds.
import { readdirSync, readFileSync } from "node:fs";

/** Fields after the parenthesised command name of /proc/<pid>/stat: state, ppid, pgrp, … */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

const live = (state: string | undefined) => state !== undefined && state !== "Z" && state !== "X";

export function alive(pid: number): boolean {
  return live(statFields(pid)?.[0]);
}

export function groupAlive(pgid: number): boolean {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields && Number(fields[2]) === pgid && live(fields[0])) return true;
  }
  return false;
}

