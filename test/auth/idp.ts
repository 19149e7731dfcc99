// A real OpenID provider (panva's oidc-provider) in the test process, on 127.0.0.1. Only its interaction step
// is a test stand-in: instead of a login form it takes the account named by `login_hint` (which the hub passes
// through), or the default account, and finishes login and consent at once, so a client just follows redirects.
import { generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
// oidc-provider ships no type declarations; the few shapes used here are spelled out below.
import Provider from "oidc-provider";

export interface IdpAccount {
  sub: string;
  email?: unknown;
  email_verified?: unknown;
  hd?: string;
  name?: string;
}

export interface IdpOptions {
  /** Accounts by login hint. */
  accounts: Record<string, IdpAccount>;
  clientId: string;
  clientSecret: string;
  /** Used when the authorization request has no login_hint. */
  defaultAccount?: string;
}

export interface Idp {
  issuer: string;
  /** The client's redirect URI, once the hub's address is known; requests before that get 503. */
  setRedirectUri(uri: string): void;
  /** Every ID token, access token and authorization code issued, to check none of them leaks into logs. */
  issued: string[];
  close(): Promise<void>;
}

const INTERACTION = /^\/interaction\/[\w-]+$/;

export async function startIdp(opts: IdpOptions): Promise<Idp> {
  const bySub = new Map(Object.values(opts.accounts).map((a) => [a.sub, a]));
  const issued: string[] = [];
  let provider: Provider | undefined;
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  const server = createServer((req, res) => {
    if (!provider || !handle) {
      res.writeHead(503).end("the test IdP has no redirect URI yet\n");
      return;
    }
    if (INTERACTION.test(req.url ?? "")) void interact(provider, req, res).catch((err: unknown) => res.writeHead(500).end(String(err)));
    else handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function interact(p: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await p.interactionDetails(req, res);
    const hint = (details.params.login_hint as string | undefined) ?? opts.defaultAccount;
    const account = hint === undefined ? undefined : opts.accounts[hint];
    if (!account) {
      res.writeHead(400).end(`the test IdP has no account "${hint}"\n`);
      return;
    }
    const grant = new p.Grant({ accountId: account.sub, clientId: details.params.client_id as string });
    grant.addOIDCScope("openid email profile");
    const grantId = await grant.save();
    await p.interactionFinished(req, res, { login: { accountId: account.sub }, consent: { grantId } }, { mergeWithLastSubmission: false });
  }

  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    issuer,
    issued,
    setRedirectUri(uri) {
      provider = new Provider(issuer, {
        clients: [
          {
            client_id: opts.clientId,
            client_secret: opts.clientSecret,
            redirect_uris: [uri],
            grant_types: ["authorization_code"],
            response_types: ["code"],
            // What openid-client sends when given a secret.
            token_endpoint_auth_method: "client_secret_post",
          },
        ],
        jwks: { keys: [{ ...privateKey.export({ format: "jwk" }), kid: "test", alg: "RS256", use: "sig" }] },
        cookies: { keys: ["test-idp-cookie-key"] },
        findAccount: (_ctx: unknown, sub: string) => {
          const a = bySub.get(sub);
          if (!a) return undefined;
          return { accountId: sub, claims: () => ({ sub, email: a.email, email_verified: a.email_verified, hd: a.hd, name: a.name }) };
        },
        claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "hd"] },
        // Put the scopes' claims in the ID token itself, as Google does.
        conformIdTokenClaims: false,
        features: { devInteractions: { enabled: false } },
        interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
        pkce: { required: () => true },
        ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
      });
      provider.on("grant.success", (ctx) => {
        const body = ctx.body as { id_token?: string; access_token?: string };
        const code = (ctx.oidc.params as { code?: string } | undefined)?.code;
        for (const value of [body.id_token, body.access_token, code]) if (value) issued.push(value);
      });
      handle = provider.callback();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
