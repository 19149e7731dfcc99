// The messages the web process may send the privileged helper, and the helper's answers. The helper parses
// every request with these schemas and trusts nothing else about it: a compromised web process can ask only
// for what these describe, and the helper checks each request against its own reading of the config.
import { z } from "zod";
import { SERVER_NAME, USER_NAME } from "../../src/names.js";

const id = z.number().int().nonnegative();
/** Unit names as units.ts makes them; the helper also checks the unit belongs to slicehub. */
export const UNIT_NAME = /^slicehub-server-[A-Za-z0-9:_.\\-]{1,200}\.service$/;
const unit = z.string().regex(UNIT_NAME, "not a slicehub server unit");
const terminalId = z.string().regex(/^[0-9a-f]{16}$/, "not a terminal id");
const terminalSize = { cols: z.number().int().min(2).max(1000), rows: z.number().int().min(2).max(500) };

export const HelperRequest = z.discriminatedUnion("op", [
  z.strictObject({
    op: z.literal("start"),
    id,
    user: z.string().regex(USER_NAME),
    server: z.union([z.literal(""), z.string().regex(SERVER_NAME)]),
    profile: z.string().max(32),
    port: z.number().int().min(1024).max(65535),
    token: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "not a slicehub token"),
  }),
  z.strictObject({ op: z.literal("stop"), id, unit, timeoutMs: z.number().int().min(100).max(600_000) }),
  z.strictObject({ op: z.literal("poll"), id, unit }),
  z.strictObject({ op: z.literal("detail"), id, unit }),
  z.strictObject({ op: z.literal("usage"), id, unit }),
  z.strictObject({ op: z.literal("list"), id }),
  // Terminals (src/terminal/helper-side.ts): the helper picks the account, shell, limits and unit itself.
  z.strictObject({
    op: z.literal("terminal-open"),
    id,
    user: z.string().regex(USER_NAME),
    server: z.union([z.literal(""), z.string().regex(SERVER_NAME)]),
    profile: z.string().max(32),
    ...terminalSize,
  }),
  z.strictObject({ op: z.literal("terminal-resize"), id, terminal: terminalId, ...terminalSize }),
  z.strictObject({ op: z.literal("terminal-close"), id, terminal: terminalId }),
  z.strictObject({ op: z.literal("terminal-list"), id }),
  // SSH (spawners/privileged/ssh.ts): the helper resolves the Unix account from the hub user name itself.
  z.strictObject({ op: z.literal("ssh-end"), id, user: z.string().regex(USER_NAME) }),
  z.strictObject({ op: z.literal("ssh-sessions"), id, users: z.array(z.string().regex(USER_NAME)).max(100_000) }),
  z.strictObject({ op: z.literal("ssh-prepare"), id, user: z.string().regex(USER_NAME) }),
  z.strictObject({ op: z.literal("ssh-limits"), id }),
  z.strictObject({ op: z.literal("ssh-logins"), id, cursor: z.string().max(1000).regex(/^[\x21-\x7e]*$/).optional() }),
  // HTTPS (src/tls.ts): the certificate and key named in the helper's own reading of the config, no path sent.
  z.strictObject({ op: z.literal("tls-read"), id }),
  // The web unit runs as the service user from the start and cannot read a root-only client_secret_file: the
  // helper reads the one its own copy of the config names (never a path from the message).
  z.strictObject({ op: z.literal("oidc-secret"), id }),
]);
export type HelperRequest = z.infer<typeof HelperRequest>;

/** Distributive Omit, so each request kind keeps its own fields. */
export type RequestBody = HelperRequest extends infer R ? (R extends HelperRequest ? Omit<R, "id"> : never) : never;

export interface SystemdState {
  unit: string;
  slice: string;
  host: string;
  port: number;
  uid: number;
  [k: string]: unknown;
}

export type HelperMessage =
  | { type: "ready"; pid: number }
  | { type: "progress"; id: number; progress: number; message: string }
  | { type: "result"; id: number; ok: true; result: unknown }
  | { type: "result"; id: number; ok: false; error: string };
