// Secrets the hub keeps across restarts.
import { newSecret } from "../secrets.js";
import type { StoreClass } from "./base.js";

export function HubSecrets<B extends StoreClass>(Base: B) {
  return class HubSecrets extends Base {
    /**
     * A random 32-byte secret kept across restarts (the OIDC state cookie's sealing key), created on first use.
     * Whoever creates it first wins, so two processes opening the same database agree on it.
     */
    secret(name: string): Buffer {
      const get = this.stmt("SELECT value FROM hub_secrets WHERE name = ?");
      let row = get.get(name) as { value: Buffer } | undefined;
      if (!row) {
        this.stmt("INSERT OR IGNORE INTO hub_secrets (name, value) VALUES (?, ?)").run(name, Buffer.from(newSecret(), "base64url"));
        row = get.get(name) as { value: Buffer };
      }
      return row.value;
    }
  };
}
