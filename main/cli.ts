#!/usr/bin/env node
// The `slicehub` command.
import { parseArgs } from "node:util";
import { configJsonSchema, loadConfigFile } from "../src/config/load.js";
import { databasePath, loadConfigOrExit, runDaemon } from "./daemon.js";
import { USER_NAME } from "../src/names.js";
import { packageVersion } from "../src/package-root.js";
import { Store } from "../src/store/store.js";
import { expandScopes, grants, parseScope, roleScopes } from "../src/scopes.js";
import { accessUnder } from "../auth/access.js";

const MAIN_HELP = `slicehub — log people in, start a Jupyter server for each, and proxy to it.

Usage:
  slicehub start [--config FILE]        run the hub (without --config: the embedded development default)
  slicehub check-config FILE            validate a config file; prints every problem as path: message (line:col)
  slicehub schema                       print the config file's JSON Schema (for editors)
  slicehub token USER [--config FILE]   print a new API token for USER
  slicehub install                      set up this host: system user, /etc/slicehub, the systemd units
  slicehub uninstall [--dry-run]        undo install: units, servers, sshd drop-in (keeps homes and data unless asked)
  slicehub backup FILE [--config FILE]  copy the hub's database to FILE, also while the hub runs
  slicehub restore FILE [--config FILE] put a backup in place of the database (the hub must be stopped)
  slicehub doctor [--config FILE]       check this host and the config; says how to fix each problem
  slicehub help COMMAND                 help for one command

Options:
  -h, --help       show help
  -V, --version    print the version

Docs: README.md and docs/config.md in the source tree.
`;

const HELP: Record<string, string> = {
  start: `Usage: slicehub start [--config FILE]

Runs the hub: one listener serving /hub/ and proxying /user/<name>/ to each user's server.

Without --config it runs the embedded development default: listen on http://127.0.0.1:8000, development
login (any user name, loopback only), servers started as this user with jupyterhub-singleuser, state in
./.slicehub/. With --config it reads FILE and reloads it on SIGHUP or when the file changes.

With the systemd spawner it needs the privileged helper: run as run_as (slicehub.service does), it
connects to slicehub-helper.service; run as root, it forks the helper and drops to run_as. Under systemd
(Type=notify) it reports READY=1 once it answers, STATUS= lines, and pings the watchdog.

Logs go to stdout as JSON lines with a journald priority prefix. SIGTERM or SIGINT stop the hub; user
servers keep running and are adopted again when it starts.

Options:
  -c, --config FILE   the JSON config file (comments and trailing commas allowed)
  -h, --help          show this help
`,
  "check-config": `Usage: slicehub check-config FILE

Validates FILE without starting anything. Exits 0 when it is valid, 1 with every problem listed as
"path: message (line:col)" when it is not.
`,
  schema: `Usage: slicehub schema

Prints the JSON Schema of the config file. Save it next to the config and point "$schema" at it:
  slicehub schema > /etc/slicehub/config.schema.json
`,
  install: `Usage: slicehub install [--config-dir DIR] [--unit-dir DIR] [--user NAME] [--state-dir DIR]

Sets up this host for the systemd spawner, as root. Creates only what is missing:
  - the system user the web-facing process drops to (default: slicehub)
  - DIR/config.json, a starter config (root:slicehub, mode 0640; never overwritten) and its JSON Schema
  - DIR/roothooks.d, empty (executables there run as root before each server starts)
  - the state directory (default /var/lib/slicehub), owned by that user
  - two units (see deploy/): slicehub.service, the web process as that user from the start (strictly
    sandboxed; CAP_NET_BIND_SERVICE only when listen's port is below 1024, so run install again after
    changing listen, state_dir or run_as), and slicehub-helper.service, the privileged helper (root) it
    requires, on /run/slicehub-helper/helper.sock. An install with the old single unit upgrades by running
    install again, then: systemctl daemon-reload && systemctl restart slicehub
  - with the systemd spawner and openssh-server: /etc/ssh/sshd_config.d/slicehub.conf for the managed
    accounts (keys from the hub when ssh.enabled, else no SSH login for them) and, when enabled, its
    AuthorizedKeysCommand /usr/local/libexec/slicehub/authorized-keys; sshd is reloaded. Rewritten on every
    run: run install again after changing ssh.enabled, spawner.unix_users.prefix or run_as.
Then: systemctl daemon-reload && systemctl enable --now slicehub

Options:
  --config-dir DIR   default /etc/slicehub
  --unit-dir DIR     default /etc/systemd/system
  --user NAME        default slicehub
  --state-dir DIR    default /var/lib/slicehub
  -h, --help         show this help
`,
  doctor: `Usage: slicehub doctor [--config FILE] [--json] [--timeout SECONDS]

Checks what goes wrong on a new host and prints one line per check: OK, WARN or FAIL with what was found
and, for WARN and FAIL, how to fix it. It changes nothing. Checks:
  config        the config parses (every problem listed, as check-config does)
  cgroup        cgroup v2 at /sys/fs/cgroup with the memory, cpu and pids controllers, and slicehub.slice gets them
  systemd       systemd is PID 1 and at least version 247 (systemd spawner)
  singleuser    every server command (spawner.cmd, profiles' cmd) is on PATH; its jupyterhub version, and
                whether the hub reports the same major.minor (jupyterhub_version, detected by default)
  oidc          the issuer's /.well-known/openid-configuration answers (OIDC login)
  redirect-uri  the redirect URI to register in the provider's console: <public_url>/hub/oauth_callback
  clock         this host's clock against the provider's Date header (WARN over 30 s, FAIL over 5 min)
  public-url    public_url's host resolves to an address of this host (WARN behind NAT or a proxy elsewhere)
  certificate   with listen https://: tls.cert_file readable, valid, not expiring within 21 days
  disk-state    free space where state_dir is (WARN under 10 % or 1 GiB, FAIL under 2 %)
  disk-homes    the same for spawner.unix_users.home (systemd spawner)
  sshd          with ssh.enabled: the sshd drop-in is what install writes now; as root also sshd -t and -T
  service-user  run_as exists (systemd spawner)
  unit          slicehub.service is active (and slicehub-helper.service, where installed)
  database      the database opens read-only and its schema is current
Network checks run at once, each giving up after --timeout. Some checks need root (the certificate's key
directory, sshd -t); run as another user they say what they could not check.

Exit status: 0 every check OK (or skipped), 1 at least one FAIL, 3 only WARNs, 2 a usage error.

Options:
  -c, --config FILE     the config to check (default /etc/slicehub/config.json)
  --json                print the results as one JSON object instead of lines (same exit status)
  --timeout SECONDS     how long each network check may take (default 5)
  -h, --help            show this help
`,
  uninstall: `Usage: slicehub uninstall [--config FILE] [--unit-dir DIR] [--dry-run] [--yes]
                          [--remove-homes] [--remove-data] [--remove-config]

Undoes "slicehub install", as root. Shows its plan and asks first on a terminal (--yes skips that; without a
terminal, the --remove-* options need --yes). Says what it did, line by line; run again, it finds nothing left.
Always:
  - stops and disables slicehub.service and slicehub-helper.service and removes their unit files
  - stops every user server (slicehub-server-*.service) and terminal (slicehub-terminal-*.service)
  - removes /run/slicehub (server wrapper, token files), the slices' runtime limits, sshd's drop-in
    /etc/ssh/sshd_config.d/slicehub.conf and its keys command (sshd is reloaded), the SSH limits in
    /etc/systemd/system/user-<uid>.slice.d/50-slicehub.conf, then systemctl daemon-reload
  - ends the SSH sessions of the Unix accounts slicehub created (prefix + the comment "slicehub <hub user>";
    never an adopted or other account) and locks them (usermod --expiredate 1): with the drop-in gone, a key
    in their ~/.ssh/authorized_keys would otherwise log in. Unlock one with: usermod --expiredate '' NAME
Keeps, unless asked:
  --remove-homes    delete those Unix accounts and their homes (userdel --remove, after ending their processes)
  --remove-data     delete state_dir (the database: users, tokens, servers; server logs) and the service
                    user install created (comment "slicehub daemon"), which owns it
  --remove-config   delete the config file and what install wrote beside it (config.schema.json,
                    oidc-client-secret, roothooks.d with the hooks in it), the client_secret_file and hooks_dir
                    the config names when they are in that directory, then the directory if it is empty
Back up first: slicehub backup FILE (and the config directory).

Options:
  -c, --config FILE   the installed config (default /etc/slicehub/config.json); an invalid one is read as far
                      as it goes; without one, accounts, state and the service user are left alone
  --unit-dir DIR      where install wrote the units (default /etc/systemd/system)
  --dry-run           print what it would do and change nothing (root not needed)
  -y, --yes           do not ask
  -h, --help          show this help
`,
  backup: `Usage: slicehub backup FILE [--config FILE]

Copies the hub's database (state_dir/slicehub.sqlite) to FILE with SQLite's online backup: the hub may run and
write meanwhile (a copy its writes keep restarting is finished in one read transaction). The copy goes to a
temporary file beside FILE (mode 0600), is checked with PRAGMA integrity_check, and only then renamed to FILE:
FILE is never half-written. An existing FILE is replaced; if FILE is a directory, the backup is written into
it as slicehub-<UTC time>.sqlite. Prints progress for a large database, then the size, schema version, users
and the servers recorded as running.

FILE is the database alone, one SQLite file: users, servers, hashed tokens and sessions, OAuth clients,
identities, SSH keys and the hub's own secrets (hence 0600). NOT in it: the config file, the OIDC client
secret file, root hooks, TLS files (keep /etc/slicehub too), users' homes, the local spawner's server logs.

Options:
  -c, --config FILE   the config whose state_dir holds the database (default: embedded default)
  -h, --help          show this help
`,
  restore: `Usage: slicehub restore FILE [--config FILE]

Puts a backup made by "slicehub backup" in place of the hub's database. Refused while the hub runs on that
state directory (it holds state_dir/slicehub.lock; the restore holds it too, so the hub cannot start half-way).
FILE must be a slicehub database that passes PRAGMA integrity_check with a schema no newer than this slicehub
knows (an older one is upgraded at the next start); otherwise nothing is changed. The current database is kept
as slicehub.sqlite.before-restore-<UTC time> (with its -wal, if it could not be folded in), the new one is
renamed into place and owned by run_as (systemd spawner) or the state directory's owner.

When the hub starts again it adopts the servers the backup records as running that still run, marks the
others stopped, and stops servers it does not know.

Options:
  -c, --config FILE   the config whose state_dir holds the database (default: embedded default)
  -h, --help          show this help
`,
  token: `Usage: slicehub token USER [--config FILE] [--note TEXT] [--expires-in SECONDS] [--scopes LIST] [--create]

Prints a new API token for USER on stdout, using the same state as "slicehub start" with the same
--config. The token carries the user's own rights ("inherit"), or with --scopes only the scopes named,
which USER must hold. Only its hash is stored; it cannot be shown again. Revoke it through the API
(DELETE /hub/api/users/USER/tokens/ID).

A token for Prometheus to scrape /hub/metrics (an admin holds read:metrics):
  slicehub token ADMIN --scopes read:metrics --note prometheus --config FILE > /etc/prometheus/slicehub.token

Options:
  -c, --config FILE         the config whose state_dir holds the database (default: embedded default)
  --note TEXT               a note stored with the token
  --expires-in SECONDS      the token expires after this many seconds (default: never)
  --scopes LIST             only these scopes, comma-separated, e.g. read:metrics or servers!user=USER
  --create                  create USER first if it does not exist
  -h, --help                show this help
`,
};

/** One yes/no question on the terminal; only "y" or "yes" is yes. */
async function askYes(question: string): Promise<boolean> {
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

function fail(msg: string, command?: string): never {
  process.stderr.write(`slicehub: ${msg}\n${command ? `Run "slicehub ${command} --help" for usage.\n` : 'Run "slicehub --help" for usage.\n'}`);
  process.exit(2);
}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

function parse(command: string, argv: string[], options: OptionSpec): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (err) {
    fail((err as Error).message, command);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help") {
    process.stdout.write(MAIN_HELP);
    return;
  }
  if (command === "-V" || command === "--version") {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }
  if (command === "help") {
    const topic = rest[0];
    process.stdout.write(topic && HELP[topic] ? HELP[topic] : MAIN_HELP);
    return;
  }
  switch (command) {
    case "start": {
      const { values, positionals } = parse(command, rest, { config: { type: "string", short: "c" } });
      if (values.help) return void process.stdout.write(HELP.start!);
      if (positionals.length) fail(`unexpected argument: ${positionals[0]}`, command);
      await runDaemon(values.config as string | undefined);
      return;
    }
    case "check-config": {
      const { values, positionals } = parse(command, rest, {});
      if (values.help) return void process.stdout.write(HELP["check-config"]!);
      if (positionals.length !== 1) fail("check-config takes exactly one FILE", command);
      const r = loadConfigFile(positionals[0]!);
      if (r.ok) {
        process.stdout.write(`${positionals[0]}: ok\n`);
        return;
      }
      for (const e of r.errors) process.stdout.write(`${e}\n`);
      process.stderr.write(`${r.errors.length} problem${r.errors.length === 1 ? "" : "s"} found\n`);
      process.exit(1);
    }
    case "schema": {
      const { values, positionals } = parse(command, rest, {});
      if (values.help) return void process.stdout.write(HELP.schema!);
      if (positionals.length) fail(`unexpected argument: ${positionals[0]}`, command);
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return;
    }
    case "token": {
      const { values, positionals } = parse(command, rest, {
        config: { type: "string", short: "c" },
        note: { type: "string" },
        "expires-in": { type: "string" },
        scopes: { type: "string" },
        create: { type: "boolean" },
      });
      if (values.help) return void process.stdout.write(HELP.token!);
      const scopes = values.scopes === undefined ? [] : [...new Set(String(values.scopes).split(",").map((s) => s.trim()))];
      for (const scope of scopes) {
        const parsed = parseScope(scope);
        if (typeof parsed === "string") fail(`--scopes: ${parsed}`, command);
      }
      if (positionals.length !== 1) fail("token takes exactly one USER", command);
      const name = positionals[0]!;
      if (!USER_NAME.test(name)) fail(`not a valid user name: ${name}`, command);
      let expires: number | null = null;
      if (values["expires-in"] !== undefined) {
        expires = Number(values["expires-in"]);
        if (!Number.isInteger(expires) || expires <= 0) fail("--expires-in takes a whole number of seconds", command);
      }
      const cfg = loadConfigOrExit(values.config as string | undefined);
      const store = new Store(databasePath(cfg));
      try {
        let user = store.getUser(name);
        if (!user && values.create) user = store.ensureUser(name);
        if (!user) {
          process.stderr.write(`slicehub: no such user: ${name} (they appear after their first login; or pass --create)\n`);
          process.exit(1);
        }
        // What USER holds: their role now, or as the config makes it at the next start (admin_users).
        const access = accessUnder(cfg, store, user);
        const admin = !!user.admin || (access.allowed && access.admin === true);
        const held = expandScopes(roleScopes({ name: user.name, admin }));
        const missing = scopes.filter((s) => !grants(held, s));
        if (missing.length) {
          process.stderr.write(`slicehub: ${name} does not hold ${missing.join(", ")}${admin ? "" : " (read:metrics and the other unfiltered scopes are admins')"}\n`);
          process.exit(1);
        }
        const { token } = store.createToken({
          userId: user.id,
          kind: "api",
          scopes: scopes.length ? scopes : ["inherit"],
          note: (values.note as string | undefined) ?? "Created by slicehub token",
          expiresInS: expires,
        });
        process.stdout.write(`${token}\n`);
      } finally {
        store.close();
      }
      return;
    }
    case "install": {
      const { values, positionals } = parse(command, rest, {
        "config-dir": { type: "string" },
        "unit-dir": { type: "string" },
        user: { type: "string" },
        "state-dir": { type: "string" },
      });
      if (values.help) return void process.stdout.write(HELP.install!);
      if (positionals.length) fail(`unexpected argument: ${positionals[0]}`, command);
      const { install } = await import("./install.js");
      await install(
        {
          configDir: (values["config-dir"] as string | undefined) ?? "/etc/slicehub",
          unitDir: (values["unit-dir"] as string | undefined) ?? "/etc/systemd/system",
          user: (values.user as string | undefined) ?? "slicehub",
          stateDir: (values["state-dir"] as string | undefined) ?? "/var/lib/slicehub",
        },
        (line) => process.stdout.write(`${line}\n`),
      );
      return;
    }
    case "doctor": {
      const { values, positionals } = parse(command, rest, { config: { type: "string", short: "c" }, json: { type: "boolean" }, timeout: { type: "string" } });
      if (values.help) return void process.stdout.write(HELP.doctor!);
      if (positionals.length) fail(`unexpected argument: ${positionals[0]}`, command);
      const timeout = values.timeout === undefined ? 5 : Number(values.timeout);
      if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 120) fail("--timeout takes a number of seconds (at most 120)", command);
      const { runDoctor } = await import("./doctor.js");
      const status = await runDoctor({
        configPath: (values.config as string | undefined) ?? "/etc/slicehub/config.json",
        timeoutMs: Math.round(timeout * 1000),
        json: values.json === true,
        out: (text) => process.stdout.write(text),
        progress: { write: (text) => process.stderr.write(text), tty: process.stderr.isTTY === true },
        color: process.stdout.isTTY === true && !process.env.NO_COLOR,
      });
      process.exitCode = status;
      return;
    }
    case "uninstall": {
      const { values, positionals } = parse(command, rest, {
        config: { type: "string", short: "c" },
        "unit-dir": { type: "string" },
        "dry-run": { type: "boolean" },
        yes: { type: "boolean", short: "y" },
        "remove-homes": { type: "boolean" },
        "remove-data": { type: "boolean" },
        "remove-config": { type: "boolean" },
      });
      if (values.help) return void process.stdout.write(HELP.uninstall!);
      if (positionals.length) fail(`unexpected argument: ${positionals[0]}`, command);
      const { uninstall } = await import("./uninstall.js");
      const { CommandError } = await import("./backup.js");
      const say = (line: string) => process.stdout.write(`${line}\n`);
      try {
        await uninstall({
          configPath: (values.config as string | undefined) ?? "/etc/slicehub/config.json",
          unitDir: (values["unit-dir"] as string | undefined) ?? "/etc/systemd/system",
          removeHomes: values["remove-homes"] === true,
          removeData: values["remove-data"] === true,
          removeConfig: values["remove-config"] === true,
          dryRun: values["dry-run"] === true,
          yes: values.yes === true,
          say,
          confirm: process.stdin.isTTY ? (q) => askYes(q) : undefined,
        });
      } catch (err) {
        if (!(err instanceof CommandError)) throw err;
        process.stderr.write(`slicehub uninstall: ${err.message}\n`);
        process.exit(1);
      }
      return;
    }
    case "backup":
    case "restore": {
      const { values, positionals } = parse(command, rest, { config: { type: "string", short: "c" } });
      if (values.help) return void process.stdout.write(HELP[command]!);
      if (positionals.length !== 1) fail(`${command} takes exactly one FILE`, command);
      const cfg = loadConfigOrExit(values.config as string | undefined);
      const m = await import("./backup.js");
      const say = (line: string) => process.stdout.write(`${line}\n`);
      try {
        if (command === "backup") await m.backup({ cfg, configPath: values.config as string | undefined, file: positionals[0]!, say });
        else await m.restore({ cfg, file: positionals[0]!, say });
      } catch (err) {
        if (!(err instanceof m.CommandError)) throw err;
        process.stderr.write(`slicehub ${command}: ${err.message}\n`);
        process.exit(1);
      }
      return;
    }
    // Not for people: `slicehub start` forks this as the root half of itself (see spawners/privileged/).
    // With --listen it is slicehub-helper.service instead, serving the web unit over a Unix socket.
    case "privileged-helper": {
      const { values } = parse(command, rest, { config: { type: "string", short: "c" }, listen: { type: "boolean" } });
      if (typeof values.config !== "string") fail("privileged-helper needs --config", command);
      const { runHelper } = await import("../spawners/privileged/helper.js");
      await runHelper(values.config, { listen: values.listen === true });
      return;
    }
    default:
      fail(`unknown command: ${command}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`slicehub: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
