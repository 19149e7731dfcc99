// When a key was last used: sshd logs every public-key login as
//   Accepted publickey for jupyter-alice from 192.0.2.7 port 50522 ssh2: ED25519 SHA256:Yg3V…
// (the fingerprint as `ssh-keygen -lf` prints it, the same string the store keeps). The AuthorizedKeysCommand
// cannot record this itself: it runs before the login succeeds and only reads. Whoever feeds these lines in
// (src/hub/ssh-keys.ts recordSshLogins) must take them from sshd itself — journal entries with _COMM=sshd and
// _UID=0, fields journald sets and a user cannot — since any local user can write a look-alike line with
// `logger`. At worst a forged line moves a key's "last used" time; it grants nothing.

export interface AcceptedKey {
  /** The Unix account logged into. */
  account: string;
  /** "SHA256:…" */
  fingerprint: string;
  /** sshd's name for the key type: ED25519, RSA, ECDSA, ED25519-SK, ECDSA-SK. */
  keyType: string;
  from: string;
}

const ACCEPTED = /^Accepted publickey for ([a-z_][a-z0-9_.-]{0,31}) from (\S+) port \d+ ssh2: ([A-Z0-9-]+) (SHA256:[A-Za-z0-9+/]{43})$/;

/** The login a sshd log message records, or undefined for any other message (and for certificate logins). */
export function parseAcceptedPublickey(message: string): AcceptedKey | undefined {
  const m = ACCEPTED.exec(message.trim());
  if (!m || m[3]!.endsWith("-CERT")) return undefined;
  return { account: m[1]!, from: m[2]!, keyType: m[3]!, fingerprint: m[4]! };
}
