// What `slicehub install` adds to the web unit's template from the config (main/install.ts webUnitExtras): no
// capability unless a listener's port is below 1024, the state directory writable when it is not the
// StateDirectory, and paths under homes bound back into ProtectHome's empty /home and /root.
import { describe, expect, it } from "vitest";
import { webUnitExtras } from "../main/install.js";
import { embeddedDefaultConfig } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";

const cfg = (listen: string, extra: Partial<Config> = {}): Config => ({ ...embeddedDefaultConfig("/tmp"), listen, ...extra }) as Config;
const base = { configDir: "/etc/slicehub", stateDir: "/var/lib/slicehub", packageRoot: "/opt/slicehub", node: "/usr/bin/node" };

describe("webUnitExtras", () => {
  it("gives no capability for a high port, and CAP_NET_BIND_SERVICE only for a port below 1024", () => {
    expect(webUnitExtras(base, cfg("http://127.0.0.1:8000"))).toEqual(["CapabilityBoundingSet=", "AmbientCapabilities="]);
    const low = webUnitExtras(base, cfg("https://0.0.0.0:443"));
    expect(low).toContain("CapabilityBoundingSet=CAP_NET_BIND_SERVICE");
    expect(low).toContain("AmbientCapabilities=CAP_NET_BIND_SERVICE");
    expect(low[0]).toMatch(/443/);
    expect(webUnitExtras(base, cfg("http://127.0.0.1:80"))).toContain("AmbientCapabilities=CAP_NET_BIND_SERVICE");
    // An invalid config (install before the admin filled it in): none.
    expect(webUnitExtras(base, undefined)).toEqual(["CapabilityBoundingSet=", "AmbientCapabilities="]);
  });

  it("makes another state directory writable, and binds paths under homes back", () => {
    expect(webUnitExtras({ ...base, stateDir: "/srv/hub state" }, cfg("http://127.0.0.1:8000"))).toContain('ReadWritePaths="/srv/hub state"');
    const home = webUnitExtras({ ...base, packageRoot: "/root/slicehub", node: "/home/admin/.nvm/versions/node/v20/bin/node", stateDir: "/home/hub/state" }, cfg("http://127.0.0.1:8000"));
    expect(home).toEqual([
      "CapabilityBoundingSet=",
      "AmbientCapabilities=",
      "ReadWritePaths=/home/hub/state",
      "ProtectHome=tmpfs",
      "BindReadOnlyPaths=/root/slicehub",
      "BindReadOnlyPaths=/home/admin/.nvm/versions/node/v20",
      "BindPaths=/home/hub/state",
    ]);
    expect(webUnitExtras(base, cfg("http://127.0.0.1:8000")).some((l) => l.startsWith("ProtectHome") || l.startsWith("Bind"))).toBe(false);
  });
});
