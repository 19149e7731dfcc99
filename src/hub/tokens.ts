// Minting API tokens: the one rule the REST API (POST /hub/api/users/{name}/tokens) and the tokens page
// (POST /hub/token) share. A new token never carries more than its owner holds, nor more than the
// credential that asks for it: a browser session counts as the user's full role, a token as its own scopes.
// So a token that may only make tokens cannot make one that may do anything else.
import { expandScopes, grants, parseScope, roleScopes } from "../scopes.js";
import type { TokenRow, UserRow } from "../store/store.js";
import type { Hub, Who } from "./context.js";

export interface TokenRequest {
  /** Absent means "inherit". */
  scopes?: string[];
  expiresInS?: number | null;
  note: string;
}

export type Minted = { ok: true; token: string; row: TokenRow } | { ok: false; status: 400 | 403; message: string };

/** What `who` may hand on: the stored scopes of the calling token, or the user's role for a session. */
function callerScopes(who: Who): string[] {
  return who.via === "token" && who.token ? (JSON.parse(who.token.scopes) as string[]) : ["inherit"];
}

function describe(who: Who): string {
  return who.via === "token" && who.token ? `token a${who.token.id} of User ${who.user.name}` : `User ${who.user.name}`;
}

export function mintToken(hub: Hub, who: Who, owner: UserRow, req: TokenRequest): Minted {
  const asked = req.scopes ?? ["inherit"];
  for (const s of asked) {
    if (s === "inherit") continue;
    const parsed = parseScope(s);
    if (typeof parsed === "string") return { ok: false, status: 400, message: parsed };
  }
  // "inherit" asked by a token means that token's own scopes, never more.
  const scopes = asked.includes("inherit") && who.via === "token" ? [...new Set([...asked.filter((s) => s !== "inherit"), ...callerScopes(who)])] : [...new Set(asked)];
  const concrete = expandScopes(scopes.flatMap((s) => (s === "inherit" ? roleScopes(owner) : [s])));

  const ownerHeld = expandScopes(roleScopes(owner));
  const notOwners = [...concrete].filter((s) => !grants(ownerHeld, s));
  if (notOwners.length) return { ok: false, status: 403, message: `Not assigning requested scopes ${notOwners.sort().join(",")} not held by User ${owner.name}` };
  const notCallers = [...concrete].filter((s) => !grants(who.scopes, s));
  if (notCallers.length) return { ok: false, status: 403, message: `Not assigning requested scopes ${notCallers.sort().join(",")} not held by ${describe(who)}` };

  // Nor may it outlive the token that made it.
  let expiresInS = req.expiresInS ?? null;
  const callerExpires = who.via === "token" ? who.token?.expires_at : null;
  if (callerExpires) {
    const left = Math.max(1, Math.floor((callerExpires - Date.now()) / 1000));
    expiresInS = expiresInS === null ? left : Math.min(expiresInS, left);
  }
  const { token, row } = hub.store.createToken({ userId: owner.id, kind: "api", scopes, note: req.note, expiresInS });
  hub.log.info("token created", { user: owner.name, token_id: `a${row.id}`, by: who.user.name, via: who.via, scopes: scopes.length > 8 ? `${scopes.length} scopes` : scopes.join(" ") });
  return { ok: true, token, row };
}
