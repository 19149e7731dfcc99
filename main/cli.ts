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
  slicehub import jupyterhub SQLITE_FILE [--config FILE] [--dry-run]
                                        take users, admins, groups and named servers from a JupyterHub database
  slicehub export z2jh [--config FILE] [-o FILE]
                                        write Helm values for Zero to JupyterHub (Kubernetes) from the config
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
  import: `Usage: slicehub import jupyterhub SQLITE_FILE [--config FILE] [--dry-run] [--email-domain DOMAIN] [--json]

Takes users, admins, groups and named servers from a JupyterHub 3.x, 4.x or 5.x database (jupyterhub.sqlite)
into this hub's store (state_dir/slicehub.sqlite). SQLITE_FILE is opened read-only and never changed; JupyterHub
may run meanwhile (it is read in one transaction). Run it with --dry-run first: it prints, user by user, what
it would do (create, update, unchanged or skip, and why), and changes nothing.

  users          named as the first OIDC login names them (auth.username applied to the email: a JupyterHub
                 name that is an email, or NAME@DOMAIN with --email-domain); invalid or colliding names are
                 skipped with the reason, never merged. The first login with that verified email (a Gmail or
                 Workspace account with Google) takes the imported user; nobody else's login can.
  admins         the admin flag; the hub sets admin rights from auth.admin_users at login, so add them there
  groups         written into each user's note ("Imported from JupyterHub 3.x on …; groups: lab"), shown on
                 the admin page and in the REST API's user model
  named servers  stopped, with their last activity; names slicehub refuses are skipped with the reason
NOT carried: API tokens (JupyterHub keeps only hashes; the output counts them), passwords, auth_state, spawner
state and user_options, roles other than admin, services, shares. The config is never edited: the output ends
with the JSON to merge into it (auth.admin_users, auth.allowed_users, groups).

The real run prints the same plan, then does it in ONE transaction (nothing half-written), also while the hub
runs. Running it again changes nothing and says so. A user that exists already keeps its login identity and
tokens; one made through the API or the dev login is not taken over. Guide: docs/coming-from-jupyterhub.md.

Options:
  -c, --config FILE        the hub's config (default /etc/slicehub/config.json)
  --dry-run                print the plan, change nothing
  --email-domain DOMAIN    JupyterHub names that are not emails are the local part of an address at DOMAIN
  --json                   print the plan as one JSON object
  -h, --help               show this help
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
  export: `Usage: slicehub export z2jh [--config FILE] [-o FILE] [--force] [--image NAME[:TAG]] [options]

Writes Helm values for the Zero to JupyterHub chart 4.4.0 (JupyterHub 5.5.0) that reproduce this hub as far
as the chart can: OIDC login through OAuthenticator (Google, or any issuer through GenericOAuthenticator) with
the same allowed, admin and blocked users and domains and the same user names; profiles as KubeSpawner's
profileList with memory/CPU limits and guarantees; the command, default URL and environment; named servers;
idle culling; a PVC per user for homes; HTTPS. Settings with no equivalent (root hooks, systemd hardening,
per-user slices, SSH, ...) are listed in a comment block at the top, each with what to do instead. The header
has the exact helm command and what to do before it (the Secret, the image, DNS, copying homes).

The OAuth client secret is never written: the values refer to a Kubernetes Secret (OAUTH_CLIENT_SECRET) and
the header prints the kubectl command that makes it from the secret's file. The development login is refused
(it has no password) unless --allow-dev. For another issuer than Google its discovery document is read
(<issuer>/.well-known/openid-configuration) for the endpoints; --offline writes guesses marked "CHECK".
Without -o the values go to stdout; with -o to FILE (mode 0600) through a temporary file, so FILE is whole or
absent, and never replacing an existing FILE without --force. Warnings and progress go to stderr. Exit status:
0 written, 1 nothing written (an invalid config, dev login, FILE exists, ...), 2 a usage error.
Guide and the full mapping: docs/growing-past-one-host.md.

Options:
  -c, --config FILE              the config (default /etc/slicehub/config.json)
  -o, --output FILE              write the values to FILE instead of stdout
  --force                        replace FILE if it exists
  --image NAME[:TAG]             the image of users' servers; without it, asked on a terminal, else
                                 quay.io/jupyter/scipy-notebook:latest (pin a dated tag)
  --storage-capacity SIZE        each user's home volume (default 10Gi)
  --storage-class NAME           the StorageClass of home volumes (default: the cluster's default)
  --memory-guarantee-ratio R     memory reserved per server = profile limit × R (0 < R <= 1; default 1)
  --cpu-guarantee-ratio R        CPU reserved per server = profile limit × R (0 < R <= 1; default 0.1)
  --letsencrypt-email EMAIL      HTTPS through the chart with Let's Encrypt for public_url's host
  --namespace NAME               Kubernetes namespace in the commands (default jupyterhub)
  --release NAME                 Helm release name (default jupyterhub)
  --secret-name NAME             Secret holding the OAuth client secret (default slicehub-oauth)
  --offline                      do not read the issuer's discovery document
  --timeout SECONDS              how long reading it may take (default 5)
  --allow-dev                    export a dev-login config with JupyterHub's dummy authenticator (tests only)
  -h, --help                     show this help
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
  } catch (err) {
    // Ctrl+D or Ctrl+C at the question: readline aborts it; that is a no.
    if ((err as Error).name !== "AbortError") throw err;
    process.stdout.write("\n");
    return false;
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
    case "export": {
      const { values, positionals } = parse(command, rest, {
        config: { type: "string", short: "c" },
        output: { type: "string", short: "o" },
        force: { type: "boolean" },
        image: { type: "string" },
        "storage-capacity": { type: "string" },
        "storage-class": { type: "string" },
        "memory-guarantee-ratio": { type: "string" },
        "cpu-guarantee-ratio": { type: "string" },
        "letsencrypt-email": { type: "string" },
        namespace: { type: "string" },
        release: { type: "string" },
        "secret-name": { type: "string" },
        offline: { type: "boolean" },
        timeout: { type: "string" },
        "allow-dev": { type: "boolean" },
      });
      if (values.help) return void process.stdout.write(HELP.export!);
      if (positionals[0] !== "z2jh" || positionals.length !== 1) fail('export takes one target: "z2jh" (slicehub export z2jh)', command);
      const str = (k: string) => values[k] as string | undefined;
      const ratio = (k: string, def: number) => {
        const r = str(k) === undefined ? def : Number(str(k));
        if (!Number.isFinite(r) || r <= 0 || r > 1) fail(`--${k} takes a number above 0 and at most 1`, command);
        return r;
      };
      const capacity = str("storage-capacity") ?? "10Gi";
      if (!/^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/.test(capacity)) fail("--storage-capacity takes a Kubernetes quantity like 10Gi", command);
      const k8sName = (k: string, def: string) => {
        const v = str(k) ?? def;
        if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(v)) fail(`--${k}: not a Kubernetes name (lower-case letters, digits, '-')`, command);
        return v;
      };
      const storageClass = str("storage-class");
      if (storageClass !== undefined && !/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(storageClass)) fail("--storage-class: not a StorageClass name", command);
      const email = str("letsencrypt-email");
      if (email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) fail("--letsencrypt-email: not an email address", command);
      const timeout = str("timeout") === undefined ? 5 : Number(str("timeout"));
      if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 120) fail("--timeout takes a number of seconds (at most 120)", command);
      const { runExport, parseImage } = await import("./export-z2jh.js");
      const image = str("image");
      if (image !== undefined && !parseImage(image)) fail(`--image: not an image reference like quay.io/jupyter/scipy-notebook:2025-01-01 (${image})`, command);
      const tty = process.stdin.isTTY === true && process.stderr.isTTY === true;
      process.exitCode = await runExport(
        {
          config: str("config") ?? "/etc/slicehub/config.json",
          output: str("output"),
          force: values.force === true,
          image,
          storageCapacity: capacity,
          storageClass,
          memoryGuaranteeRatio: ratio("memory-guarantee-ratio", 1),
          cpuGuaranteeRatio: ratio("cpu-guarantee-ratio", 0.1),
          letsencryptEmail: email,
          namespace: k8sName("namespace", "jupyterhub"),
          release: k8sName("release", "jupyterhub"),
          secretName: k8sName("secret-name", "slicehub-oauth"),
          offline: values.offline === true,
          timeoutMs: Math.round(timeout * 1000),
          allowDev: values["allow-dev"] === true,
        },
        {
          stdout: (text) => process.stdout.write(text),
          stderr: (text) => process.stderr.write(text),
          ask: tty
            ? async (question) => {
                const { createInterface } = await import("node:readline/promises");
                const rl = createInterface({ input: process.stdin, output: process.stderr });
                try {
                  return await rl.question(question);
                } finally {
                  rl.close();
                }
              }
            : undefined,
        },
      );
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
    case "import": {
      const { values, positionals } = parse(command, rest, {
        config: { type: "string", short: "c" },
        "dry-run": { type: "boolean" },
        "email-domain": { type: "string" },
        json: { type: "boolean" },
      });
      if (values.help) return void process.stdout.write(HELP.import!);
      if (positionals[0] !== "jupyterhub") fail(positionals.length ? `cannot import from ${positionals[0]}: only "jupyterhub"` : "import needs a source: import jupyterhub SQLITE_FILE", command);
      if (positionals.length !== 2) fail("import jupyterhub takes exactly one SQLITE_FILE", command);
      const configPath = (values.config as string | undefined) ?? "/etc/slicehub/config.json";
      const cfg = loadConfigOrExit(configPath);
      const m = await import("./import-jupyterhub.js");
      const emailDomain = values["email-domain"] as string | undefined;
      if (emailDomain !== undefined && !m.DOMAIN.test(emailDomain.toLowerCase())) fail(`--email-domain: not a domain name like example.org (${emailDomain})`, command);
      try {
        await m.importJupyterhub({
          cfg,
          configPath,
          file: positionals[1]!,
          dryRun: values["dry-run"] === true,
          emailDomain,
          json: values.json === true,
          say: (line) => process.stdout.write(`${line}\n`),
          progress: (line) => process.stderr.write(`${line}\n`),
        });
      } catch (err) {
        if (!(err instanceof m.ImportError)) throw err;
        process.stderr.write(`slicehub import: ${err.message}\n`);
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
