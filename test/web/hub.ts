// The hub the web tests run against: dev login with an admin, three profiles (one only for bob), named
// servers, and the fake single-user server (fail-* users cannot start, slow-* users take 1.5 s).
import { join } from "node:path";
import { HubProcess, ROOT } from "../e2e/harness.js";

const FAKE = join(ROOT, "test/e2e/fixtures/fake-singleuser.mjs");

export const PROFILES = [
  { name: "small", title: "Small", description: "Notebooks, teaching and light data work.", memory: "2G", cpu: 1 },
  { name: "large", title: "Large", description: "Bigger data sets and parallel jobs.", memory: "8G", cpu: 4 },
  { name: "gpu", title: "GPU box", description: "Reserved for training runs.", memory: "32G", cpu: 8, users: ["bob"] },
];

export function startWebHub(): Promise<HubProcess> {
  return HubProcess.start({
    config: {
      auth: { kind: "dev", admin_users: ["admin"] },
      spawner: { cmd: [process.execPath, FAKE], args: [], start_timeout_s: 20, named_servers: { limit: 2 }, profiles: PROFILES },
    },
  });
}

/** Poll until `check` holds (bounded), so tests wait for background starts and stops without sleeping blindly. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
