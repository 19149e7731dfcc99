// The OIDC login page and its error states. Refusals arrive as a reason code in `?error=`; only the texts
// below are ever shown, so a crafted link cannot put words on the hub's login page.
import type { LoginError, LoginPages } from "../auth/pages.js";
import { Layout } from "./layout.js";
import { DevLoginPage } from "./pages.js";

const LOGIN_ERRORS: Readonly<Record<LoginError, string>> = {
  email_not_verified: "Your email address is not verified by your identity provider. Verify it there, then try again.",
  no_email: "Your identity provider did not share your email address, which this hub needs to know who you are.",
  blocked: "This account is blocked on this hub.",
  not_allowed: "This account is not on this hub's list of allowed users. Ask the hub's administrator for access.",
  wrong_domain: "This account's domain is not allowed on this hub. Sign in with your organisation's account, or ask the hub's administrator.",
  bad_username: "No valid user name can be made from this account. Ask the hub's administrator.",
  subject_collision: "The user name this account would get already belongs to someone else on this hub. Ask the hub's administrator.",
  expired: "The login expired or was started in another browser. Please try again.",
  failed: "The identity provider's answer could not be accepted. Please try again.",
};

export function loginErrorText(code: string): string {
  return Object.hasOwn(LOGIN_ERRORS, code) ? LOGIN_ERRORS[code as LoginError] : "The login did not succeed. Please try again.";
}

export function OidcLoginPage(props: { provider: string; href: string; error?: string }) {
  return (
    <Layout title="Log in">
      <div class="card">
        <h1>Log in</h1>
        {props.error ? (
          <p class="error" role="alert">
            {props.error}
          </p>
        ) : null}
        <p>
          <a class="button primary" href={props.href}>
            Sign in with {props.provider}
          </a>
        </p>
      </div>
    </Layout>
  );
}

export function LoginUnavailablePage(props: { message: string }) {
  return (
    <Layout title="Login unavailable">
      <div class="card">
        <h1>Login is unavailable</h1>
        <p class="error">{props.message}</p>
        <p>
          <a href="/hub/login">Try again</a>
        </p>
      </div>
    </Layout>
  );
}

/** What the login routes show, handed to them by the composition root (main/app.ts). */
export const LOGIN_PAGES: LoginPages = {
  devLogin: (props) => <DevLoginPage {...props} />,
  oidcLogin: (props) => <OidcLoginPage {...props} />,
  unavailable: (props) => <LoginUnavailablePage {...props} />,
  errorText: loginErrorText,
};
