// The pages the login routes show. The web layer provides them (main/app.ts passes them in), so auth/ decides
// who gets in and web/ decides how it looks, and neither imports the other's insides.
import type { HtmlEscapedString } from "hono/utils/html";
import type { RefusalReason } from "./decide.js";

/** Why a login was refused, as the `?error=` code the login page turns into words. */
export type LoginError = RefusalReason | "subject_collision" | "expired" | "failed";

type Page = HtmlEscapedString | Promise<HtmlEscapedString>;

export interface LoginPages {
  devLogin(props: { next: string; xsrf: string; error?: string }): Page;
  oidcLogin(props: { provider: string; href: string; error?: string }): Page;
  unavailable(props: { message: string }): Page;
  /** The words for a `?error=` code; unknown codes get a generic text, so a link cannot put words there. */
  errorText(code: string): string;
}
