// JupyterHub's timestamp conventions (spec §4.3): output always UTC with microseconds and a literal Z;
// input any ISO-8601, zone honoured, naive = UTC.
import { describe, expect, it } from "vitest";
import { isoZ, parseIso } from "../../src/time.js";

const FORMAT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

describe("isoZ", () => {
  it("prints UTC with six fraction digits and Z, null for unknown", () => {
    expect(isoZ(Date.UTC(2026, 10, 22, 22, 9, 57, 337))).toBe("2026-11-22T22:09:57.337000Z");
    expect(isoZ(0)).toBe("1970-01-01T00:00:00.000000Z");
    expect(isoZ(Date.now())).toMatch(FORMAT);
    expect(isoZ(null)).toBeNull();
    expect(isoZ(undefined)).toBeNull();
  });
});

describe("parseIso", () => {
  const t = Date.UTC(2026, 10, 22, 22, 9, 57, 337);
  it("reads what the single-user server sends (microseconds, Z)", () => {
    expect(parseIso("2026-11-22T22:09:57.337840Z")).toBe(t);
  });
  it("treats a naive timestamp as UTC", () => {
    expect(parseIso("2026-11-22T22:09:57.337840")).toBe(t);
    expect(parseIso("2026-11-22 22:09:57.337")).toBe(t);
  });
  it("honours an explicit zone", () => {
    expect(parseIso("2026-11-23T00:09:57.337+02:00")).toBe(t);
    expect(parseIso("2026-11-22T22:09:57.337+00:00")).toBe(t);
  });
  it("round-trips isoZ", () => {
    expect(parseIso(isoZ(t)!)).toBe(t);
  });
  it("is NaN for garbage", () => {
    for (const bad of ["", "yesterday", "22:09:57", "2026-13-45T00:00:00Z", "not 2026-11-22T22:09:57Z"]) expect(parseIso(bad), bad).toBeNaN();
  });
});
