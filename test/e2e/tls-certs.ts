// Certificates made with the real openssl for the https tests: a throw-away CA and leaves it signs (for
// localhost and 127.0.0.1), replaced under a running hub the way certbot renews (new files, symlinks swapped).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";

export const OPENSSL = "/usr/bin/openssl";
export const haveOpenssl = existsSync(OPENSSL);

const run = (args: string[], cwd: string) => execFileSync(OPENSSL, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });

export class TestCa {
  readonly caCert: string;
  readonly caKey: string;
  private constructor(readonly dir: string) {
    this.caCert = join(dir, "ca.pem");
    this.caKey = join(dir, "ca.key");
  }

  /** A CA valid for two days, EC P-256, in `dir`. */
  static create(dir: string): TestCa {
    mkdirSync(dir, { recursive: true });
    const ca = new TestCa(dir);
    run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca.caKey, "-out", ca.caCert, "-days", "2", "-subj", "/CN=slicehub test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
    return ca;
  }

  get pem(): string {
    return readFileSync(this.caCert, "utf8");
  }

  /**
   * A leaf for localhost and 127.0.0.1 with this serial (hex), signed by the CA: `name.pem` (leaf then CA, like
   * certbot's fullchain.pem) and `name.key`. `days: 0` makes one that expires at once (notAfter = now).
   */
  leaf(name: string, serialHex: string, days = 2): { cert: string; key: string; fingerprint256: string; spki: string } {
    const key = join(this.dir, `${name}.key`);
    const csr = join(this.dir, `${name}.csr`);
    const leaf = join(this.dir, `${name}.leaf.pem`);
    const ext = join(this.dir, `${name}.ext`);
    writeFileSync(ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n");
    run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost"], this.dir);
    const validity = ["-days", String(days)];
    run(["x509", "-req", "-in", csr, "-CA", this.caCert, "-CAkey", this.caKey, "-set_serial", `0x${serialHex}`, ...validity, "-extfile", ext, "-out", leaf], this.dir);
    const cert = join(this.dir, `${name}.pem`);
    writeFileSync(cert, readFileSync(leaf, "utf8") + this.pem);
    const x = new X509Certificate(readFileSync(leaf));
    const spki = execFileSync("/bin/sh", ["-c", `${OPENSSL} x509 -in "$1" -pubkey -noout | ${OPENSSL} pkey -pubin -outform der | ${OPENSSL} dgst -sha256 -binary | base64`, "sh", leaf]).toString().trim();
    return { cert, key, fingerprint256: x.fingerprint256, spki };
  }
}

/**
 * certbot's layout: /etc/letsencrypt/live/<name>/{fullchain,privkey}.pem are symlinks into archive/; a renewal
 * writes new archive files and swaps each symlink (a new link renamed over the old one).
 */
export class LiveDir {
  readonly fullchain: string;
  readonly privkey: string;
  private n = 0;
  constructor(readonly dir: string) {
    mkdirSync(join(dir, "archive"), { recursive: true });
    mkdirSync(join(dir, "live"), { recursive: true });
    this.fullchain = join(dir, "live", "fullchain.pem");
    this.privkey = join(dir, "live", "privkey.pem");
  }

  /** Installs this cert and key (their contents), as a renewal does; `only` swaps just one of the two. */
  install(pair: { cert: string; key: string }, only?: "cert" | "key", keyMode = 0o600): void {
    this.n += 1;
    const swap = (link: string, target: string) => {
      const tmp = `${link}.new`;
      symlinkSync(target, tmp);
      renameSync(tmp, link);
    };
    if (only !== "key") {
      const a = join(this.dir, "archive", `fullchain${this.n}.pem`);
      writeFileSync(a, readFileSync(pair.cert));
      swap(this.fullchain, a);
    }
    if (only !== "cert") {
      const a = join(this.dir, "archive", `privkey${this.n}.pem`);
      writeFileSync(a, readFileSync(pair.key), { mode: keyMode });
      swap(this.privkey, a);
    }
  }

  /** Writes garbage as the next certificate (a broken renewal). */
  installBroken(text: string): void {
    this.n += 1;
    const a = join(this.dir, "archive", `fullchain${this.n}.pem`);
    writeFileSync(a, text);
    const tmp = `${this.fullchain}.new`;
    symlinkSync(a, tmp);
    renameSync(tmp, this.fullchain);
  }
}
