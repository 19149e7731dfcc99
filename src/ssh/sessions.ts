// SSH sessions as the web process sees them: every operation is a request to the privileged helper (ops ssh-*),
// which finds the user's Unix account itself. Under the local spawner there are no managed accounts, so there is
// no SSH to end or count and every call is a no-op.
import type { Logger } from "../log.js";
import type { HelperClient } from "../../spawners/privileged/client.js";
import type { SshUsage } from "../../spawners/privileged/ssh.js";

export type { SshUsage };

export class SshSessions {
  constructor(
    private readonly helper: HelperClient | undefined,
    private readonly log: Logger,
  ) {}

  /** Whether there is anything to do here (the systemd spawner's helper). */
  get available(): boolean {
    return this.helper !== undefined;
  }

  /** Ends every open SSH session of this hub user's account; resolves with how many there were. */
  async end(user: string): Promise<number> {
    if (!this.helper) return 0;
    const { sessions } = await this.helper.request<{ sessions: number }>({ op: "ssh-end", user });
    if (sessions) this.log.warn("SSH sessions ended", { user, sessions });
    return sessions;
  }

  /** end() for each user that has SSH sessions now (one look at all of them, then one request per user). */
  async endAll(users: string[]): Promise<void> {
    if (!this.helper || users.length === 0) return;
    const open = await this.usage(users);
    await Promise.all(Object.keys(open).map((u) => this.end(u)));
  }

  /** Per hub user with at least one SSH session: sessions, their memory and CPU time. */
  async usage(users: string[]): Promise<Record<string, SshUsage>> {
    if (!this.helper || users.length === 0) return {};
    return this.helper.request<Record<string, SshUsage>>({ op: "ssh-sessions", users });
  }

  /** Creates the user's Unix account if needed (a key added before any server start) and sets its SSH limits. */
  async prepare(user: string): Promise<void> {
    if (!this.helper) return;
    await this.helper.request({ op: "ssh-prepare", user });
  }

  #loginsCursor: string | undefined;

  /**
   * Hands sshd's new "Accepted publickey" lines (read by the helper from sshd's own journal entries) to `record`,
   * which marks the keys' last use; resumes where the last call stopped. Returns how many keys were marked.
   */
  async pollLogins(record: (entries: { message: string; at: Date }[]) => number): Promise<number> {
    if (!this.helper) return 0;
    const { entries, cursor } = await this.helper.request<{ entries: { message: string; at: number }[]; cursor?: string }>({
      op: "ssh-logins",
      ...(this.#loginsCursor ? { cursor: this.#loginsCursor } : {}),
    });
    this.#loginsCursor = cursor ?? this.#loginsCursor;
    return entries.length ? record(entries.map((e) => ({ message: e.message, at: new Date(e.at) }))) : 0;
  }

  /** After a config change: every managed account's SSH limits follow the new profiles and slice limits. */
  async applyLimits(): Promise<void> {
    if (!this.helper) return;
    const { changed } = await this.helper.request<{ changed: number }>({ op: "ssh-limits" });
    if (changed) this.log.info("SSH limits updated after a config change", { accounts: changed });
  }
}
