// Structured logs: one JSON object per line on stdout, prefixed with a syslog priority ("<6>") that journald
// turns into the entry's PRIORITY, so `journalctl -u slicehub -p warning` works.
export type Level = "debug" | "info" | "warn" | "error";

const PRIORITY: Record<Level, number> = { debug: 7, info: 6, warn: 4, error: 3 };
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

// Field names whose values are never written, whatever a caller passes.
const SECRET_KEY = /token|secret|password|cookie|authorization|code_verifier|^code$/i;

let minLevel: Level = (process.env.SLICEHUB_LOG_LEVEL as Level | undefined) ?? "info";
if (!(minLevel in ORDER)) minLevel = "info";

export function setLogLevel(level: Level): void {
  minLevel = level;
}

function redact(value: unknown, depth = 0): unknown {
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? "[redacted]" : redact(v, depth + 1);
  return out;
}

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (ORDER[level] < ORDER[minLevel]) return;
  const entry = { ts: new Date().toISOString(), level, msg, ...(fields ? (redact(fields) as object) : {}) };
  process.stdout.write(`<${PRIORITY[level]}>${JSON.stringify(entry)}\n`);
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

function make(base: Record<string, unknown>): Logger {
  const w = (level: Level) => (msg: string, fields?: Record<string, unknown>) => write(level, msg, { ...base, ...fields });
  return {
    debug: w("debug"),
    info: w("info"),
    warn: w("warn"),
    error: w("error"),
    child: (fields) => make({ ...base, ...fields }),
  };
}

export const log: Logger = make({});
