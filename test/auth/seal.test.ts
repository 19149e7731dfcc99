// The sealed OIDC state cookie and the replay guard, without a hub: what opens, what is refused and why, and
// that the set of used states stays bounded.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_NEXT_BYTES, safeNext } from "../../auth/next.js";
import { openAttempt, sealAttempt, UsedStates, type LoginAttempt } from "../../auth/oidc.js";

const key = new Uint8Array(randomBytes(32));
const attempt: LoginAttempt = {
  state: "state-" + randomBytes(16).toString("base64url"),
  nonce: "nonce-" + randomBytes(16).toString("base64url"),
  codeVerifier: "verifier-" + randomBytes(32).toString("base64url"),
  next: "/hub/home?x=1",
};

afterEach(() => {
  vi.useRealTimers();
});

describe("the sealed login attempt", () => {
  it("opens under the same key for the same state, with everything in it", async () => {
    const sealed = await sealAttempt(key, attempt);
    const opened = await openAttempt(key, sealed, attempt.state);
    expect(opened).toEqual({ ok: true, attempt, expiresAt: expect.any(Number) });
    const { expiresAt } = opened as { expiresAt: number };
    expect(expiresAt).toBeGreaterThan(Date.now() + 590_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 600_000);
  });

  it("is a compact JWE (dir, A256GCM) that shows none of its contents", async () => {
    const sealed = await sealAttempt(key, attempt);
    const parts = sealed.split(".");
    expect(parts).toHaveLength(5);
    expect(parts[1]).toBe(""); // no wrapped key: "dir"
    expect(JSON.parse(Buffer.from(parts[0]!, "base64url").toString())).toEqual({ alg: "dir", enc: "A256GCM", typ: "slicehub-oidc-attempt" });
    for (const secret of [attempt.state, attempt.nonce, attempt.codeVerifier, attempt.next]) expect(sealed).not.toContain(secret);
    // Two seals of the same attempt differ (a fresh IV each time).
    expect(await sealAttempt(key, attempt)).not.toBe(sealed);
  });

  it("stays under 4 KB with the longest next= safeNext keeps, even in the characters JSON makes longest", async () => {
    const attempt43 = { state: "s".repeat(43), nonce: "n".repeat(43), codeVerifier: "v".repeat(43) };
    const cases = [
      ["/hub/home?q=" + "a".repeat(MAX_NEXT_BYTES - 12), 1900],
      ["/hub/home?q=" + "€".repeat(337), 1900], // 1023 bytes, 3 bytes each in UTF-8 and in JSON
      ['/hub/home?q="' + '"'.repeat(MAX_NEXT_BYTES - 13), 3300], // JSON doubles each quote
    ] as const;
    for (const [raw, under] of cases) {
      const next = safeNext(raw);
      expect(next).toBe(raw);
      const sealed = await sealAttempt(key, { ...attempt43, next });
      expect(sealed.length).toBeLessThan(under);
      expect(await openAttempt(key, sealed, attempt43.state)).toMatchObject({ ok: true, attempt: { next } });
    }
  });

  it("refuses another state than the sealed one", async () => {
    const sealed = await sealAttempt(key, attempt);
    expect(await openAttempt(key, sealed, `${attempt.state}x`)).toEqual({ ok: false, why: "the state does not belong to this browser's login" });
    expect(await openAttempt(key, sealed, "")).toMatchObject({ ok: false });
  });

  it("refuses it under another key", async () => {
    const sealed = await sealAttempt(key, attempt);
    const other = new Uint8Array(randomBytes(32));
    expect(await openAttempt(other, sealed, attempt.state)).toEqual({ ok: false, why: expect.stringMatching(/not one this hub sealed/) });
  });

  it.each([
    ["a flipped ciphertext bit", (p: string[]) => flip(p, 3)],
    ["a flipped tag bit", (p: string[]) => flip(p, 4)],
    ["a flipped IV bit", (p: string[]) => flip(p, 2)],
    ["an altered header", (p: string[]) => replace(p, 0, Buffer.from(JSON.stringify({ alg: "dir", enc: "A128GCM", typ: "slicehub-oidc-attempt" })).toString("base64url"))],
    ["a cut-off tag", (p: string[]) => replace(p, 4, p[4]!.slice(0, 10))],
    ["a missing part", (p: string[]) => p.slice(0, 4)],
  ])("refuses %s", async (_what, tamper) => {
    const sealed = await sealAttempt(key, attempt);
    const tampered = tamper(sealed.split(".")).join(".");
    expect(tampered).not.toBe(sealed);
    expect(await openAttempt(key, tampered, attempt.state)).toEqual({ ok: false, why: expect.stringMatching(/not one this hub sealed/) });
  });

  it.each(["", "garbage", "a.b.c.d.e", "x".repeat(100_000), attempt.state])("refuses the cookie %j", async (cookie) => {
    expect(await openAttempt(key, cookie.slice(0, 100_000), attempt.state)).toMatchObject({ ok: false });
  });

  it("refuses a JWE of another kind sealed under the same key", async () => {
    const { EncryptJWT } = await import("jose");
    const foreign = await new EncryptJWT({ state: attempt.state, nonce: "n", cv: "v", next: "/" })
      .setProtectedHeader({ alg: "dir", enc: "A256GCM" })
      .setExpirationTime("10m")
      .encrypt(key);
    expect(await openAttempt(key, foreign, attempt.state)).toMatchObject({ ok: false });
  });

  it("refuses it once the attempt has expired", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const sealed = await sealAttempt(key, attempt);
    vi.advanceTimersByTime(599_000);
    expect(await openAttempt(key, sealed, attempt.state)).toMatchObject({ ok: true });
    vi.advanceTimersByTime(1_000);
    expect(await openAttempt(key, sealed, attempt.state)).toEqual({ ok: false, why: "the login attempt expired" });
  });
});

describe("UsedStates", () => {
  it("takes a state once", () => {
    const used = new UsedStates();
    expect(used.take("a", 2_000, 1_000)).toBe(true);
    expect(used.take("a", 2_000, 1_500)).toBe(false);
    expect(used.take("b", 2_000, 1_500)).toBe(true);
  });

  it("forgets states whose attempts have expired", () => {
    const used = new UsedStates();
    for (let i = 0; i < 100; i++) used.take(`s${i}`, 2_000, 1_000);
    expect(used.size).toBe(100);
    used.take("later", 5_000, 2_000);
    expect(used.size).toBe(1);
  });

  it("never holds more than its cap, forgetting the oldest first", () => {
    const used = new UsedStates(50);
    for (let i = 0; i < 1_000; i++) expect(used.take(`s${i}`, 10_000, 1_000)).toBe(true);
    expect(used.size).toBe(50);
    expect(used.take("s999", 10_000, 1_000)).toBe(false);
    expect(used.take("s950", 10_000, 1_000)).toBe(false);
    expect(used.take("s0", 10_000, 1_000)).toBe(true);
  });
});

function flip(parts: string[], i: number): string[] {
  const bytes = Buffer.from(parts[i]!, "base64url");
  bytes[0]! ^= 1;
  return replace(parts, i, bytes.toString("base64url"));
}

function replace(parts: string[], i: number, part: string): string[] {
  const copy = [...parts];
  copy[i] = part;
  return copy;
}
