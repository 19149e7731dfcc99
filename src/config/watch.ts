// Applies edits to the config file while the daemon runs, so an admin never restarts it (and never drops
// anyone's running server) to change an allow-list or a limit. A broken edit never replaces a working config.
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { isDeepStrictEqual } from "node:util";
import type { Logger } from "../log.js";
import { parseConfigText, readConfigText } from "./load.js";
import type { Config } from "./schema.js";

// The listener is bound and the database opened once at start-up; changing these needs a restart (tls: the
// block itself; the certificate files it names are reloaded whenever they change).
const RESTART_KEYS = ["listen", "state_dir", "tls"] as const;

// Editors write a file in several steps (truncate, write, rename); react once they have finished.
const DEBOUNCE_MS = 150;

export class ConfigWatcher {
  readonly #path: string;
  readonly #onChange: (next: Config, prev: Config) => void;
  readonly #log: Logger;
  #current: Config;
  #lastText: string | undefined;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #onSighup = () => {
    this.#log.info("SIGHUP received, reloading config", { path: this.#path });
    this.reload();
  };

  constructor(path: string, initial: Config, onChange: (next: Config, prev: Config) => void, log: Logger) {
    this.#path = resolve(path);
    this.#current = initial;
    this.#onChange = onChange;
    this.#log = log;
  }

  get current(): Config {
    return this.#current;
  }

  start(): void {
    if (this.#watcher) return;
    const read = readConfigText(this.#path);
    this.#lastText = read.ok ? read.text : undefined;
    // The directory, not the file: editors and config management replace the file by renaming a new one over
    // it, and a watch on the old file would never see another change.
    const name = basename(this.#path);
    this.#watcher = watch(dirname(this.#path), { persistent: false }, (_event, filename) => {
      if (filename !== null && filename !== name) return;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#fileChanged(), DEBOUNCE_MS).unref();
    });
    this.#watcher.on("error", (err) => this.#log.warn("cannot watch the config file; SIGHUP still reloads it", { path: this.#path, err }));
    process.on("SIGHUP", this.#onSighup);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
    process.off("SIGHUP", this.#onSighup);
  }

  // Re-reads the file now, changed or not. Returns whether the file held a valid config.
  reload(): boolean {
    const read = readConfigText(this.#path);
    if (!read.ok) {
      this.#lastText = undefined;
      return this.#reject(read.errors);
    }
    return this.#apply(read.text);
  }

  #fileChanged(): void {
    const read = readConfigText(this.#path);
    // A save without changes, or a metadata-only event, is not worth a reload and a log line.
    if (read.ok && read.text === this.#lastText) return;
    if (!read.ok) {
      this.#lastText = undefined;
      this.#reject(read.errors);
      return;
    }
    this.#apply(read.text);
  }

  #apply(text: string): boolean {
    this.#lastText = text;
    const result = parseConfigText(text, this.#path, dirname(this.#path));
    if (!result.ok) return this.#reject(result.errors);

    const prev = this.#current;
    // Subdomain mode is fixed at start: running servers' routes, OAuth redirects and links to the hub were made
    // for it (public_url too while it is on, since the servers link to the hub there).
    const subdomains = prev.subdomain_host !== undefined || result.config.subdomain_host !== undefined;
    const restartKeys: (keyof Config)[] = [...RESTART_KEYS, "subdomain_host", ...(subdomains ? (["public_url"] as const) : [])];
    const pending = restartKeys.filter((key) => !isDeepStrictEqual(result.config[key], prev[key]));
    if (pending.length > 0) {
      this.#log.warn("config change needs a restart; keeping the running value until then", {
        path: this.#path,
        keys: pending,
        running: Object.fromEntries(pending.map((key) => [key, prev[key]])),
        in_file: Object.fromEntries(pending.map((key) => [key, result.config[key]])),
      });
    }
    const next: Config = { ...result.config, listen: prev.listen, state_dir: prev.state_dir };
    if (subdomains) {
      delete next.subdomain_host;
      delete next.public_url;
      if (prev.subdomain_host !== undefined) next.subdomain_host = prev.subdomain_host;
      if (prev.public_url !== undefined) next.public_url = prev.public_url;
    }
    const keys = new Set([...Object.keys(prev), ...Object.keys(next)] as (keyof Config)[]);
    const changed = [...keys].filter((key) => !isDeepStrictEqual(prev[key], next[key]));
    this.#log.info("config reloaded", { path: this.#path, changed });
    if (changed.length === 0) return true;

    this.#current = next;
    try {
      this.#onChange(next, prev);
    } catch (err) {
      // The file is valid and now current; a failing subscriber must not take the daemon down from a signal or
      // file-watch callback.
      this.#log.error("applying the reloaded config failed", { path: this.#path, err });
    }
    return true;
  }

  #reject(errors: string[]): false {
    this.#log.warn("config rejected, keeping the last good config", { path: this.#path, errors });
    return false;
  }
}
