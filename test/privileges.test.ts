// prepareStateDir runs as root and hands the state directory to the unprivileged run_as user, who owned
// (and could plant anything in) that directory during the previous run: nothing in it may make root change
// the owner of a file outside it.
import { linkSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prepareStateDir } from "../src/privileges.js";

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("privileges.test.ts: not root, so prepareStateDir (which chowns) is not tested");

const owner = (path: string) => {
  const st = lstatSync(path);
  return { uid: st.uid, gid: st.gid };
};

describe.skipIf(!isRoot)("prepareStateDir [needs root]", () => {
  let dir: string;
  let state: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-privileges-"));
    state = join(dir, "state");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("creates the directory and hands it and everything in it to the user", () => {
    prepareStateDir(state, NOBODY, NOBODY);
    mkdirSync(join(state, "logs"));
    writeFileSync(join(state, "logs", "ada.log"), "");
    writeFileSync(join(state, "slicehub.sqlite"), "");
    prepareStateDir(state, NOBODY, NOBODY);
    for (const p of [state, join(state, "logs"), join(state, "logs", "ada.log"), join(state, "slicehub.sqlite")]) {
      expect(owner(p)).toEqual({ uid: NOBODY, gid: NOBODY });
    }
  });

  it("hands over a symlink planted in it, never the root-owned file it points to", () => {
    const secret = join(dir, "secret");
    writeFileSync(secret, "root's");
    mkdirSync(join(state, "logs"), { recursive: true });
    symlinkSync(secret, join(state, "planted"));
    symlinkSync(secret, join(state, "logs", "ada.log"));
    prepareStateDir(state, NOBODY, NOBODY);
    expect(owner(secret)).toEqual({ uid: 0, gid: 0 });
    expect(owner(join(state, "planted"))).toEqual({ uid: NOBODY, gid: NOBODY });
    expect(owner(join(state, "logs", "ada.log"))).toEqual({ uid: NOBODY, gid: NOBODY });
  });

  it("does not walk into a directory that a planted symlink points to", () => {
    const outside = join(dir, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "file"), "");
    mkdirSync(state);
    symlinkSync(outside, join(state, "logs"));
    prepareStateDir(state, NOBODY, NOBODY);
    expect(owner(outside)).toEqual({ uid: 0, gid: 0 });
    expect(owner(join(outside, "file"))).toEqual({ uid: 0, gid: 0 });
    expect(owner(join(state, "logs"))).toEqual({ uid: NOBODY, gid: NOBODY });
  });

  it("leaves alone a file with other hard links, which may be a file from elsewhere linked in", () => {
    const secret = join(dir, "secret");
    writeFileSync(secret, "root's");
    mkdirSync(state);
    linkSync(secret, join(state, "planted"));
    prepareStateDir(state, NOBODY, NOBODY);
    expect(owner(secret)).toEqual({ uid: 0, gid: 0 });
  });
});
