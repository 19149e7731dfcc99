// Parsing pasted SSH public keys (src/ssh/keys.ts) against keys ssh-keygen made, with ssh-keygen's own
// fingerprints and sizes as the reference; every refusal; and the store's ssh_keys group.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_COMMENT_CHARS, parsePublicKey, sanitiseComment, type PublicKey } from "../../src/ssh/keys.js";
import { Store } from "../../src/store/store.js";

let dir: string;
const made: Record<string, string> = {};

/** A key pair from ssh-keygen; returns the .pub line. */
function keygen(name: string, args: string[], comment = `${name}@test`): string {
  execFileSync("ssh-keygen", ["-q", ...args, "-C", comment, "-N", "", "-f", join(dir, name)]);
  return readFileSync(join(dir, `${name}.pub`), "utf8");
}

/** ssh-keygen -lf's bits, fingerprint and type for a .pub line. */
function keygenPrint(line: string): { bits: number; fingerprint: string; label: string } {
  const file = join(dir, `print-${Math.random().toString(36).slice(2)}.pub`);
  writeFileSync(file, line);
  const out = execFileSync("ssh-keygen", ["-lf", file]).toString().trim();
  const m = /^(\d+) (SHA256:\S+) .*\((\S+)\)$/.exec(out);
  if (!m) throw new Error(`unexpected ssh-keygen output: ${out}`);
  return { bits: Number(m[1]), fingerprint: m[2]!, label: m[3]! };
}

const wire = (...parts: (string | Buffer)[]) =>
  Buffer.concat(
    parts.flatMap((p) => {
      const b = typeof p === "string" ? Buffer.from(p) : p;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      return [len, b];
    }),
  );

const ok = (line: string): PublicKey => {
  const r = parsePublicKey(line);
  if (!r.ok) throw new Error(`refused: ${r.message}`);
  return r.key;
};
const refusal = (line: string): string => {
  const r = parsePublicKey(line);
  if (r.ok) throw new Error(`accepted: ${line.slice(0, 80)}`);
  return r.message;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "slicehub-ssh-keys-"));
  made.ed25519 = keygen("ed25519", ["-t", "ed25519"]);
  made.ecdsa256 = keygen("ecdsa256", ["-t", "ecdsa", "-b", "256"]);
  made.ecdsa384 = keygen("ecdsa384", ["-t", "ecdsa", "-b", "384"]);
  made.ecdsa521 = keygen("ecdsa521", ["-t", "ecdsa", "-b", "521"]);
  made.rsa2048 = keygen("rsa2048", ["-t", "rsa", "-b", "2048"]);
  made.rsa3072 = keygen("rsa3072", ["-t", "rsa", "-b", "3072"]);
  made.rsa1024 = keygen("rsa1024", ["-t", "rsa", "-b", "1024"]);
  made.dsa = keygen("dsa", ["-t", "dsa"]);
  // No security key here: build the public halves by hand, in the wire format ssh-keygen reads.
  const pk = Buffer.alloc(32, 7);
  made.sked25519 = `sk-ssh-ed25519@openssh.com ${wire("sk-ssh-ed25519@openssh.com", pk, "ssh:").toString("base64")} yubi@test\n`;
  // A real P-256 point (ssh-keygen checks it is on the curve): the one in the ECDSA key just made.
  const ecdsa = Buffer.from(made.ecdsa256.split(" ")[1]!, "base64");
  const point = ecdsa.subarray(ecdsa.length - 65);
  made.skecdsa = `sk-ecdsa-sha2-nistp256@openssh.com ${wire("sk-ecdsa-sha2-nistp256@openssh.com", "nistp256", point, "ssh:").toString("base64")} yubi@test\n`;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("parsePublicKey", () => {
  it("accepts every allowed type with ssh-keygen's fingerprint and size", () => {
    for (const name of ["ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa2048", "rsa3072"]) {
      const line = made[name]!;
      const key = ok(line);
      const ref = keygenPrint(line);
      expect(key.fingerprint, name).toBe(ref.fingerprint);
      expect(key.bits, name).toBe(ref.bits);
      expect(key.comment).toBe(`${name}@test`);
      expect(key.type).toBe(line.split(" ")[0]);
      expect(key.base64).toBe(line.split(" ")[1]);
    }
  });

  it("accepts FIDO security keys (sk-ssh-ed25519, sk-ecdsa) with ssh-keygen's fingerprint", () => {
    for (const name of ["sked25519", "skecdsa"]) {
      const key = ok(made[name]!);
      const ref = keygenPrint(made[name]!);
      expect(key.fingerprint, name).toBe(ref.fingerprint);
      expect(key.bits).toBe(ref.bits);
      expect(ref.label).toMatch(/-SK$/);
    }
  });

  it("counts RSA modulus bits and refuses RSA under 2048 bits", () => {
    expect(ok(made.rsa2048!).bits).toBe(2048);
    expect(ok(made.rsa3072!).bits).toBe(3072);
    expect(refusal(made.rsa1024!)).toMatch(/at least 2048 bits; this one has 1024/);
  });

  it("refuses DSA keys", () => {
    expect(refusal(made.dsa!)).toMatch(/DSA keys are no longer accepted/);
  });

  it("accepts a key without a comment, with surrounding blanks, tabs and CRLF", () => {
    const [type, b64] = made.ed25519!.trim().split(" ");
    expect(ok(`${type} ${b64}`).comment).toBe("");
    expect(ok(`\n  ${type}\t${b64}  laptop key \r\n`).comment).toBe("laptop key");
  });

  it("refuses several lines or several keys in one entry", () => {
    expect(refusal(made.ed25519! + made.rsa2048!)).toMatch(/exactly one key/);
    expect(refusal(`${made.ed25519!.trim()}\r${made.ecdsa256!.trim()}`)).toMatch(/exactly one key/);
    expect(refusal(`${made.ed25519!.trim()}\u2028${made.ecdsa256!.trim()}`)).toMatch(/exactly one key/);
    // Two keys pasted on one line: the second would be "comment".
    expect(refusal(`${made.ed25519!.trim()} ${made.ecdsa256!.trim()}`)).toMatch(/exactly one key/);
  });

  it("refuses authorized_keys options in front of the key", () => {
    for (const opts of ['command="/bin/sh"', 'from="10.0.0.0/8"', "no-pty", "restrict", "restrict,pty", 'environment="A=b"', "cert-authority"]) {
      expect(refusal(`${opts} ${made.ed25519!}`), opts).toMatch(/Remove the options in front of the key/);
    }
  });

  it("refuses private keys with a clear message", () => {
    expect(refusal(readFileSync(join(dir, "ed25519"), "utf8"))).toMatch(/That is a private key\. Never paste it/);
    expect(refusal(readFileSync(join(dir, "rsa2048"), "utf8"))).toMatch(/private key/);
    expect(refusal("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----")).toMatch(/private key/);
  });

  it("refuses other formats, unknown types, bad base64 and mismatched or malformed blobs", () => {
    const [, b64] = made.ed25519!.trim().split(" ");
    expect(refusal("")).toMatch(/Paste a public key/);
    expect(refusal("ssh-ed25519")).toMatch(/key data is missing/);
    expect(refusal(`ssh-foo ${b64}`)).toMatch(/Unknown or unsupported key type "ssh-foo"/);
    expect(refusal(`ssh-ed25519-cert-v01@openssh.com ${b64}`)).toMatch(/certificate/);
    expect(refusal(`ssh-ed25519 ${b64!.slice(0, -4)}`)).toMatch(/cut off|malformed|base64/);
    expect(refusal(`ssh-ed25519 ${b64}!`)).toMatch(/not valid base64/);
    expect(refusal(`ssh-ed25519 ${b64!.slice(1)}`)).toMatch(/not valid base64|cut off|says/);
    // The outer type must be the inner one.
    expect(refusal(`ssh-rsa ${b64}`)).toMatch(/key data says "ssh-ed25519" but the line says "ssh-rsa"/);
    expect(refusal(`ecdsa-sha2-nistp384 ${made.ecdsa256!.split(" ")[1]}`)).toMatch(/says "ecdsa-sha2-nistp256"/);
    // Extra bytes after the key.
    const padded = Buffer.concat([Buffer.from(b64!, "base64"), Buffer.alloc(4)]).toString("base64");
    expect(refusal(`ssh-ed25519 ${padded}`)).toMatch(/extra bytes/);
    // A curve that is not the type's.
    const point = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]);
    expect(refusal(`ecdsa-sha2-nistp256 ${wire("ecdsa-sha2-nistp256", "nistp384", point).toString("base64")}`)).toMatch(/curve is not nistp256/);
    expect(refusal("---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----")).toMatch(/RFC 4716/);
  });

  it("refuses entries over the size limit", () => {
    expect(refusal(`ssh-ed25519 ${"A".repeat(9000)}`)).toMatch(/too long/);
  });

  it("keeps a comment printable, on one line and bounded", () => {
    expect(sanitiseComment("a\tb\u0000c\u202ed\u2028e")).toBe("a b c d e");
    const long = ok(`${made.ed25519!.trim().split(" ").slice(0, 2).join(" ")} ${"x".repeat(300)}`);
    expect([...long.comment].length).toBe(MAX_COMMENT_CHARS);
    expect(long.comment.endsWith("…")).toBe(true);
    expect(ok(`${made.ed25519!.trim()} \u202eevil\u0007`).comment).toBe("ed25519@test evil");
  });
});

describe("the store's SSH keys", () => {
  it("adds, lists, refuses a duplicate per user, marks use, removes, and goes with its user", () => {
    const store = new Store(":memory:");
    try {
      const alice = store.ensureUser("alice", false);
      const bob = store.ensureUser("bob", false);
      const k = ok(made.ed25519!);
      const row = { algorithm: k.type, key: k.base64, comment: k.comment, fingerprint: k.fingerprint, bits: k.bits };
      const before = store.dataVersion();
      const added = store.addSshKey({ userId: alice.id, ...row })!;
      expect(store.dataVersion()).not.toBe(before);
      expect(added).toMatchObject({ user_id: alice.id, algorithm: "ssh-ed25519", fingerprint: k.fingerprint, bits: 256, last_used: null });
      expect(store.addSshKey({ userId: alice.id, ...row })).toBeUndefined();
      // The same key for another user is that user's business (a shared deploy key, say).
      expect(store.addSshKey({ userId: bob.id, ...row })).toBeDefined();
      expect(store.listSshKeys(alice.id).map((r) => r.id)).toEqual([added.id]);

      expect(store.markSshKeyUsed(alice.id, k.fingerprint, new Date(5000))).toBe(true);
      expect(store.markSshKeyUsed(alice.id, k.fingerprint, new Date(4000))).toBe(false);
      expect(store.getSshKey(alice.id, added.id)!.last_used).toBe(5000);
      expect(store.markSshKeyUsed(alice.id, "SHA256:nope", new Date())).toBe(false);

      // Bob cannot remove Alice's key by its id.
      expect(store.removeSshKey(bob.id, added.id)).toBeUndefined();
      expect(store.removeSshKey(alice.id, added.id)?.id).toBe(added.id);
      expect(store.listSshKeys(alice.id)).toEqual([]);

      store.deleteUser(bob.id);
      expect(store.db.prepare("SELECT count(*) AS n FROM ssh_keys").get()).toEqual({ n: 0 });
    } finally {
      store.close();
    }
  });
});
