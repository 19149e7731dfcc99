// Wire conformance of the hub API, the OAuth provider and the routing with JupyterHub, section by section of
// the project's compatibility spec (the section numbers in the file names and titles). The real daemon runs
// as a subprocess; user servers are a fake (test/e2e/fixtures/fake-singleuser.mjs) that starts in
// milliseconds and echoes what the proxy forwards, so this suite is about the hub's side of the contract only.
//
// One hub for the whole suite (conformance/hub.ts), and the sections in this order: later ones rely on the
// servers and users earlier ones made (noted where it matters).
import "./conformance/hub.js";
import "./conformance/01-version.js";
import "./conformance/02-user.js";
import "./conformance/03-servers.js";
import "./conformance/04-server-token.js";
import "./conformance/05-oauth.js";
import "./conformance/06-users-list.js";
import "./conformance/07-tokens.js";
import "./conformance/08-routing.js";
import "./conformance/09-csrf.js";
