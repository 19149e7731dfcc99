// A key's last use from sshd's "Accepted publickey" log lines: the parser, and recordSshLogins mapping the
// Unix account back to its hub user exactly (shortened names included) before marking the key.
import { describe, expect, it } from "vitest";
import type { Hub } from "../../src/hub/context.js";
import { recordSshLogins } from "../../src/hub/ssh-keys.js";
import { log } from "../../src/log.js";
import { parseAcceptedPublickey } from "../../src/ssh/last-use.js";
import { Store } from "../../src/store/store.js";
import { unixAccountName } from "../../spawners/accounts.js";
import { config } from "../hub/fakes.js";

const FP = "SHA256:Yg3VJc0yRQ2JcGQ8m5FpZ8xJb2mPp8c6e1KqkYwqv5E";
const FP2 = "SHA256:AAAAJc0yRQ2JcGQ8m5FpZ8xJb2mPp8c6e1KqkYwqv5E";

describe("parseAcceptedPublickey", () => {
  it("reads sshd's public-key login lines", () => {
    expect(parseAcceptedPublickey(`Accepted publickey for jupyter-alice from 192.0.2.7 port 50522 ssh2: ED25519 ${FP}`)).toEqual({
      account: "jupyter-alice",
      from: "192.0.2.7",
      keyType: "ED25519",
      fingerprint: FP,
    });
    expect(parseAcceptedPublickey(`Accepted publickey for jupyter-bob from ::1 port 2 ssh2: RSA ${FP}`)?.keyType).toBe("RSA");
    expect(parseAcceptedPublickey(`Accepted publickey for jupyter-bob from ::1 port 2 ssh2: ED25519-SK ${FP}`)?.keyType).toBe("ED25519-SK");
  });

  it("ignores other messages, passwords, certificates and malformed lines", () => {
    for (const line of [
      `Accepted password for jupyter-alice from 192.0.2.7 port 50522 ssh2`,
      `Failed publickey for jupyter-alice from 192.0.2.7 port 50522 ssh2: ED25519 ${FP}`,
      `Accepted publickey for jupyter-alice from 192.0.2.7 port 50522 ssh2: ED25519-CERT ${FP} ID x (serial 1) CA ED25519 ${FP}`,
      `Accepted publickey for jupyter-alice from 192.0.2.7 port 50522 ssh2: ED25519 ${FP} trailing`,
      `Accepted publickey for Jupyter Alice from 192.0.2.7 port 50522 ssh2: ED25519 ${FP}`,
      `Accepted publickey for jupyter-alice from 192.0.2.7 port 50522 ssh2: ED25519 SHA256:short`,
    ]) {
      expect(parseAcceptedPublickey(line), line).toBeUndefined();
    }
  });
});

describe("recordSshLogins", () => {
  it("marks the key of the hub user whose account logged in, and nobody else's", () => {
    const store = new Store(":memory:");
    try {
      const cfg = config(`{ "log_level": "error", "spawner": { "kind": "systemd" } }`);
      const hub = { store, config: () => cfg, log } as unknown as Hub;
      const long = "a-very-long-hub-user-name-that-needs-shortening";
      const add = (name: string, fingerprint: string) =>
        store.addSshKey({ userId: store.ensureUser(name, false).id, algorithm: "ssh-ed25519", key: "AAAA", comment: "", fingerprint, bits: 256 })!;
      const alice = add("alice", FP);
      const bob = add("bob", FP); // the same key on two accounts: only the one logged into counts
      const longKey = add(long, FP2);
      const line = (account: string, fp = FP) => `Accepted publickey for ${account} from 192.0.2.7 port 1 ssh2: ED25519 ${fp}`;
      const marked = recordSshLogins(hub, [
        { message: line("jupyter-alice"), at: new Date(1000) },
        { message: line("jupyter-alice"), at: new Date(3000) },
        { message: line("jupyter-alice"), at: new Date(2000) },
        { message: line(unixAccountName("jupyter-", long), FP2), at: new Date(4000) },
        { message: line("jupyter-nobody"), at: new Date(5000) },
        { message: line("alice"), at: new Date(5000) },
        { message: "Server listening on 0.0.0.0 port 22.", at: new Date(5000) },
      ]);
      expect(marked).toBe(3);
      expect(store.getSshKey(alice.user_id, alice.id)!.last_used).toBe(3000);
      expect(store.getSshKey(bob.user_id, bob.id)!.last_used).toBeNull();
      expect(store.getSshKey(longKey.user_id, longKey.id)!.last_used).toBe(4000);
    } finally {
      store.close();
    }
  });
});
