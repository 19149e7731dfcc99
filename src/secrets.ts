// Random credentials and the hashes they are stored as. Only hashes reach the database.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** 256 random bits, URL- and header-safe. */
export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** 128 random bits as 32 hex characters, the shape JupyterHub uses for session ids. */
export function newHexId(): string {
  return randomBytes(16).toString("hex");
}

export function sha256(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
