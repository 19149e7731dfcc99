// SSH public keys as people paste them: one OpenSSH line `type base64 [comment]`, checked the way sshd will
// read it (the wire-format blob decoded, its inner type equal to the outer one, nothing left over), so what
// the hub stores is exactly one key of an accepted type and size and nothing else. What reaches sshd is
// rebuilt from the checked parts (see main/authorized-keys.ts), never the pasted text.
import { createHash } from "node:crypto";

/** Key types accepted, with how `ssh-keygen -l` names them in its last column. DSA is not among them. */
export const KEY_TYPES = {
  "ssh-ed25519": "ED25519",
  "sk-ssh-ed25519@openssh.com": "ED25519-SK",
  "ecdsa-sha2-nistp256": "ECDSA",
  "ecdsa-sha2-nistp384": "ECDSA",
  "ecdsa-sha2-nistp521": "ECDSA",
  "sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
  "ssh-rsa": "RSA",
} as const;

export type KeyType = keyof typeof KEY_TYPES;

export const MIN_RSA_BITS = 2048;
/** OpenSSH's own upper bound (SSHBUF_MAX_BIGNUM is 16384 bits). */
export const MAX_RSA_BITS = 16384;
/** Longest entry accepted: a 16384-bit RSA key's line is about 2,800 characters. */
export const MAX_ENTRY_CHARS = 8192;
export const MAX_COMMENT_CHARS = 100;

/** The strict base64 alphabet of a key blob; also what main/authorized-keys.ts re-checks before printing. */
export const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface PublicKey {
  type: KeyType;
  /** The blob, base64 as OpenSSH writes it. */
  base64: string;
  /** Printable, one line, at most MAX_COMMENT_CHARS; "" when there was none. */
  comment: string;
  /** "SHA256:…" exactly as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  bits: number;
}

export type ParsedKey = { ok: true; key: PublicKey } | { ok: false; message: string };

const CURVES: Record<string, { bits: number; point: number }> = {
  nistp256: { bits: 256, point: 65 },
  nistp384: { bits: 384, point: 97 },
  nistp521: { bits: 521, point: 133 },
};

const isKeyType = (t: string): t is KeyType => Object.hasOwn(KEY_TYPES, t);

/** `SHA256:` and the unpadded base64 of the blob's SHA-256, as `ssh-keygen -lf` and sshd's log print it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** Printable characters only (controls, line and paragraph separators, bidi overrides become spaces), trimmed, bounded. */
export function sanitiseComment(raw: string): string {
  const clean = raw
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}]/gu, " ")
    .replace(/\s+/g, " ")
    .trim();
  const chars = [...clean];
  return chars.length > MAX_COMMENT_CHARS ? `${chars.slice(0, MAX_COMMENT_CHARS - 1).join("")}…` : clean;
}

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  /** One SSH wire-format `string` (uint32 length + bytes), or undefined when the blob ends early. */
  string(): Buffer | undefined {
    if (this.at + 4 > this.buf.length) return undefined;
    const len = this.buf.readUInt32BE(this.at);
    if (this.at + 4 + len > this.buf.length) return undefined;
    const s = this.buf.subarray(this.at + 4, this.at + 4 + len);
    this.at += 4 + len;
    return s;
  }
  get done(): boolean {
    return this.at === this.buf.length;
  }
}

/** Significant bits of an SSH mpint (big-endian two's complement), or undefined if it is negative or not minimal. */
function mpintBits(m: Buffer): number | undefined {
  if (m.length === 0) return 0;
  if (m[0]! & 0x80) return undefined;
  // A leading zero byte is only allowed (and required) in front of a byte with the top bit set.
  if (m[0] === 0 && (m.length === 1 || !(m[1]! & 0x80))) return undefined;
  let i = 0;
  while (i < m.length && m[i] === 0) i++;
  if (i === m.length) return 0;
  return (m.length - i - 1) * 8 + (32 - Math.clz32(m[i]!));
}

/** Checks the decoded blob against its type; the key's size in bits, or why it is refused. */
function checkBlob(type: KeyType, blob: Buffer): { bits: number } | string {
  const r = new Reader(blob);
  const inner = r.string()?.toString("latin1");
  if (inner === undefined) return "the key data is cut off or not an SSH public key";
  if (inner !== type) return `the key data says "${inner.slice(0, 60)}" but the line says "${type}"`;
  const truncated = "the key data is cut off or malformed";
  let bits: number;
  switch (type) {
    case "ssh-ed25519":
    case "sk-ssh-ed25519@openssh.com": {
      if (r.string()?.length !== 32) return truncated;
      bits = 256;
      break;
    }
    case "ecdsa-sha2-nistp256":
    case "ecdsa-sha2-nistp384":
    case "ecdsa-sha2-nistp521":
    case "sk-ecdsa-sha2-nistp256@openssh.com": {
      const curve = r.string()?.toString("latin1");
      const expected = type.startsWith("sk-") ? "nistp256" : type.slice("ecdsa-sha2-".length);
      if (curve !== expected) return `the key's curve is not ${expected}`;
      const point = r.string();
      if (!point || point.length !== CURVES[curve]!.point || point[0] !== 0x04) return truncated;
      bits = CURVES[curve]!.bits;
      break;
    }
    case "ssh-rsa": {
      const e = r.string();
      const n = r.string();
      if (!e || !n) return truncated;
      const eBits = mpintBits(e);
      const nBits = mpintBits(n);
      if (eBits === undefined || nBits === undefined || eBits < 2 || !(e[e.length - 1]! & 1)) return "the RSA key is malformed";
      if (nBits < MIN_RSA_BITS) return `RSA keys must have at least ${MIN_RSA_BITS} bits; this one has ${nBits}. Make an Ed25519 key instead: ssh-keygen -t ed25519`;
      if (nBits > MAX_RSA_BITS) return `RSA keys may have at most ${MAX_RSA_BITS} bits; this one has ${nBits}`;
      bits = nBits;
      break;
    }
  }
  // Security keys carry the application ("ssh:" for OpenSSH's own) after the key.
  if (type.startsWith("sk-")) {
    const app = r.string();
    if (!app || app.length === 0 || app.length > 256) return truncated;
  }
  if (!r.done) return "the key data has extra bytes at its end";
  return { bits };
}

/**
 * One public key from what a person pasted (a `.pub` file's line), or a message saying what is wrong with it,
 * worded for that person. Refused: several lines or keys, options in front of the key (`command=…`,
 * `from=…`: the hub decides those), private keys, other formats, unknown types, DSA, RSA under 2048 bits.
 */
export function parsePublicKey(input: string): ParsedKey {
  const fail = (message: string): ParsedKey => ({ ok: false, message });
  if (input.length > MAX_ENTRY_CHARS) return fail(`That is too long for one public key (at most ${MAX_ENTRY_CHARS} characters).`);
  const text = input.replace(/^\uFEFF/, "").trim();
  if (text === "") return fail("Paste a public key: the contents of a file like ~/.ssh/id_ed25519.pub.");
  if (/PRIVATE KEY-----/.test(text) || /^PuTTY-User-Key-File/.test(text)) {
    return fail("That is a private key. Never paste it anywhere: paste the public key instead, the .pub file next to it (e.g. ~/.ssh/id_ed25519.pub).");
  }
  if (/^---- BEGIN SSH2 PUBLIC KEY ----/.test(text)) {
    return fail("That key is in the RFC 4716 (SSH2) format. Convert it to one OpenSSH line with: ssh-keygen -i -f KEYFILE");
  }
  if (/-----BEGIN /.test(text)) return fail("That is a PEM file, not an OpenSSH public key. Paste the one line of a .pub file.");
  // Any line break: \n, \r, and the Unicode ones a browser or editor might keep.
  if (/[\n\r\v\f\u0085\u2028\u2029]/.test(text)) {
    return fail("Paste exactly one key, on one line. To add several keys, add them one at a time.");
  }
  const m = /^(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(text);
  const first = m?.[1] ?? text.split(/[ \t]/)[0]!;
  if (first === "ssh-dss") return fail("DSA keys are no longer accepted (OpenSSH dropped them). Make an Ed25519 key instead: ssh-keygen -t ed25519");
  if (!isKeyType(first)) {
    // authorized_keys options come first: command="…", from="…", no-pty, restrict, environment=…
    if (/[=,"]/.test(first) || /^(no-|restrict|cert-authority|agent-forwarding|pty|permit|principals|tunnel|verify-required|touch-required)/.test(first)) {
      return fail("Remove the options in front of the key (such as command=, from= or no-pty): paste only the key line, starting with its type, e.g. ssh-ed25519.");
    }
    if (/-cert-v01@openssh\.com$/.test(first)) return fail("That is an SSH certificate, not a public key. Paste the public key (.pub) itself.");
    return fail(`Unknown or unsupported key type "${first.slice(0, 60)}". Accepted: ${Object.keys(KEY_TYPES).join(", ")} (RSA with at least ${MIN_RSA_BITS} bits).`);
  }
  if (!m) return fail("The key data is missing: a public key line is its type, then the key in base64, then an optional comment.");
  const type = first;
  const base64 = m[2]!;
  const rest = m[3] ?? "";
  if (!BASE64.test(base64) || base64.length % 4 !== 0) return fail("The key data is not valid base64; was the line cut or changed when it was copied?");
  const blob = Buffer.from(base64, "base64");
  if (blob.toString("base64") !== base64) return fail("The key data is not valid base64; was the line cut or changed when it was copied?");
  // A second key on the same line (two pasted without a line break) is more than a comment.
  if (rest.split(/[ \t]+/).some((word) => isKeyType(word) || word === "ssh-dss" || /^AAAA[A-Za-z0-9+/]{16,}/.test(word))) {
    return fail("Paste exactly one key. To add several keys, add them one at a time.");
  }
  const checked = checkBlob(type, blob);
  if (typeof checked === "string") return fail(`${checked.charAt(0).toUpperCase()}${checked.slice(1)}.`);
  return { ok: true, key: { type, base64, comment: sanitiseComment(rest), fingerprint: fingerprint(blob), bits: checked.bits } };
}

/** "ED25519", "RSA", … as `ssh-keygen -l` and sshd's log name a key type. */
export function keyTypeLabel(type: string): string {
  return isKeyType(type) ? KEY_TYPES[type] : type;
}
