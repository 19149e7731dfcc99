// The admin page's SSH block: who is connected over SSH right now, with how many sessions, and what those
// sessions use (resident memory and CPU time of their processes, as the privileged helper reads them).
import type { Hub } from "../src/hub/context.js";
import type { SshUsage } from "../src/ssh/sessions.js";

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export async function SshSessionsAdmin(props: { hub: Hub; users: string[] }) {
  const { hub } = props;
  if (!hub.ssh?.available || !hub.config().ssh.enabled) return null;
  let usage: Record<string, SshUsage>;
  try {
    usage = await hub.ssh.usage(props.users);
  } catch (err) {
    hub.log.error("could not read SSH sessions", { error: err });
    return (
      <section class="card" id="ssh-sessions">
        <h2>SSH sessions</h2>
        <p class="error">The privileged helper could not say who is connected over SSH; see the hub's log.</p>
      </section>
    );
  }
  const rows = Object.entries(usage).sort(([a], [b]) => a.localeCompare(b));
  return (
    <section class="card" id="ssh-sessions">
      <h2>SSH sessions</h2>
      {rows.length === 0 ? (
        <p class="muted">No one is connected over SSH.</p>
      ) : (
        <table class="stack">
          <thead>
            <tr>
              <th>User</th>
              <th>Sessions</th>
              <th>Memory</th>
              <th>CPU time</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(([user, u]) => (
              <tr data-user={user}>
                <td data-label="User">{user}</td>
                <td data-label="Sessions" class="ssh-count">{u.sessions}</td>
                <td data-label="Memory" class="nowrap">{mib(u.memoryBytes)}</td>
                <td data-label="CPU time" class="nowrap">{`${u.cpuSeconds.toFixed(1)} s`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="muted small">Blocking a user ends their SSH sessions, as does removing one of their keys.</p>
    </section>
  );
}
