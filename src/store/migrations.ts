// Numbered schema migrations. PRAGMA user_version holds the number of the last one applied; each runs in
// its own transaction together with the version bump, so a crash leaves either the old or the new schema.
// Never edit a migration that has shipped: add the next one.
export const MIGRATIONS: readonly string[] = [
  /* 1 */ `
  CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    last_activity INTEGER
  );
  CREATE TABLE servers (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'stopped' CHECK (state IN ('stopped', 'pending', 'running', 'stopping')),
    spawn_id INTEGER NOT NULL DEFAULT 0,
    url TEXT,
    spawner_kind TEXT,
    spawner_state TEXT,
    user_options TEXT NOT NULL DEFAULT '{}',
    started INTEGER,
    last_activity INTEGER,
    failure TEXT,
    UNIQUE (user_id, name)
  );
  CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    description TEXT NOT NULL,
    allowed_scopes TEXT NOT NULL DEFAULT '[]',
    server_id INTEGER REFERENCES servers(id) ON DELETE CASCADE
  );
  CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('api', 'server', 'oauth')),
    note TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL,
    server_id INTEGER REFERENCES servers(id) ON DELETE CASCADE,
    oauth_client_id TEXT REFERENCES oauth_clients(id) ON DELETE CASCADE,
    session_id TEXT,
    created INTEGER NOT NULL,
    expires_at INTEGER,
    last_activity INTEGER
  );
  CREATE INDEX api_tokens_user ON api_tokens(user_id);
  CREATE INDEX api_tokens_session ON api_tokens(session_id);
  CREATE TABLE oauth_codes (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    session_id TEXT,
    code_challenge TEXT,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
  );
  CREATE TABLE spawn_events (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    spawn_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    event TEXT NOT NULL
  );
  CREATE INDEX spawn_events_server ON spawn_events(server_id, spawn_id, id);
  `,
  /* 2: who a hub user is at their identity provider. (issuer, subject) is what identifies a person; the
        email may change. One identity per user name, so a second subject mapping to a taken name is refused.
        The claims access decisions use (email, email_verified, hd) are kept so a config reload can re-decide.
        Users an admin blocked from the admin page. */ `
  CREATE TABLE identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id INTEGER NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    email TEXT,
    claims TEXT NOT NULL DEFAULT '{}',
    created INTEGER NOT NULL,
    last_login INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
  );
  ALTER TABLE users ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE login_attempts (
    state_hash TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    next TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  `,
  /* 3: a pending OIDC login lives in a sealed cookie now, not in a row anyone could make the hub write; the
        random keys the hub keeps across restarts (the one that seals that cookie) get a table of their own. */ `
  DROP TABLE login_attempts;
  CREATE TABLE hub_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
  );
  `,
  /* 4: users' SSH public keys, which sshd asks for through `dist/authorized-keys.js` (read-only). `key` is the
        checked base64 blob, `fingerprint` "SHA256:…" as ssh-keygen -lf and sshd's log print it (one key once
        per user), `last_used` from sshd's "Accepted publickey" log lines. */ `
  CREATE TABLE ssh_keys (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    algorithm TEXT NOT NULL,
    key TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL,
    bits INTEGER,
    created INTEGER NOT NULL,
    last_used INTEGER,
    UNIQUE (user_id, fingerprint)
  );
  `,
  /* 5: the built-in culler (src/cull.ts). Why a server last stopped when the hub stopped it by itself
        ("after 2 h idle"), shown on home until the next start; NULL after any other stop. And the login
        identities of users the culler deleted, so their name (and Unix account and home) cannot pass to another
        person who logs in with the same name: only the same (issuer, subject) gets it back. */ `
  ALTER TABLE servers ADD COLUMN stop_reason TEXT;
  ALTER TABLE servers ADD COLUMN stopped_at INTEGER;
  CREATE TABLE culled_users (
    name TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    culled INTEGER NOT NULL
  );
  `,
  /* 6: `slicehub import jupyterhub` (main/import-jupyterhub.ts). A note an admin reads on the admin page
        ("Imported from JupyterHub 3.x on 2026-12-03; groups: lab"). And what the import recorded about each user
        it made: where from, the name there, and the email whose first verified login takes the user
        (auth/decide.ts resolveIdentity: an imported user has no login identity yet, and only that email may
        bind one to it; one user per email). NULL email: none known, so no login takes it. */ `
  ALTER TABLE users ADD COLUMN note TEXT;
  CREATE TABLE imported_users (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    source_name TEXT NOT NULL,
    email TEXT UNIQUE,
    imported INTEGER NOT NULL
  );
  `,
];
