// Python for hub.extraConfig (the chart runs each snippet inside its jupyterhub_config.py, where `c` is the
// config and the chart's z2jh module gives get_config). They read their data from `custom.slicehub`, so the
// snippets are constant text: test/export/python.test.ts runs them with Debian's python3 against stubs.

/**
 * slicehub's login rule (auth/decide.ts) for OAuthenticator: who gets in is decided by the verified email (blocked,
 * admin, allowed, domain), and the hub user name is made the way slicehub makes it, so people keep their names.
 * It is OAuthenticator's username_claim (a callable since OAuthenticator 16), which runs at every login before
 * JupyterHub's own checks; a refusal is an HTTP 403 with the reason. Admin rights follow the list both ways.
 */
export const LOGIN_PY = `# Written by "slicehub export z2jh": slicehub's login rule. Keep it together with the authenticator's
# allow_all (when set): allow_all lets in whoever this check lets in. Data: custom.slicehub.login.
import re as _re
import unicodedata as _unicodedata

from tornado.web import HTTPError as _HTTPError
from z2jh import get_config as _get_config

_login = _get_config("custom.slicehub.login", {})


def _slicehub_name(raw):
    """Lower-case, accents dropped, other characters as "-", at most 64: as slicehub names users."""
    name = _unicodedata.normalize("NFKD", raw.lower())
    name = "".join(ch for ch in name if not _unicodedata.category(ch).startswith("M"))
    name = _re.sub(r"[^a-z0-9._-]+", "-", name)
    name = _re.sub(r"^[^a-z0-9]+", "", name)[:64]
    name = _re.sub(r"[^a-z0-9]+$", "", name)
    return name if _re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name) else None


def _slicehub_email(user_info):
    email = user_info.get("email")
    if not isinstance(email, str) or not _re.fullmatch(r"[^@\\s]+@[^@\\s]+", email):
        raise _HTTPError(403, "the provider sent no email address (is the email scope granted?)")
    return email.lower()


def _slicehub_username(user_info):
    email = _slicehub_email(user_info)
    # Strictly the boolean: an unverified email proves nothing.
    if user_info.get("email_verified", user_info.get("verified_email")) is not True:
        raise _HTTPError(403, f"{email} is not verified by the provider")
    if email in _login.get("blocked_users", []):
        raise _HTTPError(403, f"{email} may not log in")
    if email not in _login.get("admin_users", []) and email not in _login.get("allowed_users", []):
        if _login.get("google"):
            # Google vouches for a Workspace account's domain only through hd.
            hd = user_info.get("hd")
            domain = hd.lower() if isinstance(hd, str) else None
        else:
            domain = email.rsplit("@", 1)[1]
        if domain is None or domain not in _login.get("allowed_domains", []):
            raise _HTTPError(403, f"{email} is not allowed to log in")
    rule = _login.get("username", "email_local")
    local, at = email.rsplit("@", 1)
    if rule == "email_local":
        raw = local
    elif rule == "email":
        raw = f"{local}-at-{at}"
    else:
        raw = user_info.get(rule.get("claim", ""))
    name = _slicehub_name(raw) if isinstance(raw, str) else None
    if not name:
        raise _HTTPError(403, f"{email}: no valid user name can be made")
    return name


def _slicehub_admin(authenticator, handler, authentication):
    user_info = (authentication.get("auth_state") or {}).get(authenticator.user_auth_state_key) or {}
    authentication["admin"] = _slicehub_email(user_info) in _login.get("admin_users", [])
    return authentication


c.OAuthenticator.username_claim = _slicehub_username
c.Authenticator.post_auth_hook = _slicehub_admin
`;

/**
 * Profiles restricted to users or groups: KubeSpawner's profile_list as a function of the spawner, offering
 * each user the profiles they may use (the first of them the default), and refusing to start a server for a
 * user who may use none (KubeSpawner would otherwise start one without any profile's limits).
 */
export const PROFILES_PY = `# Written by "slicehub export z2jh": each user sees only the profiles they may use, as in slicehub.
# Data: singleuser.profileList and custom.slicehub.profile_access ({slug: {users: [...], groups: [...]}}).
from tornado.web import HTTPError as _HTTPError
from z2jh import get_config as _get_config

_slicehub_profile_list = _get_config("singleuser.profileList", [])
_slicehub_access = _get_config("custom.slicehub.profile_access", {})


def _slicehub_profiles(spawner):
    name = spawner.user.name
    groups = {g.name for g in spawner.user.groups}
    offered = []
    for profile in _slicehub_profile_list:
        rule = _slicehub_access.get(profile.get("slug"))
        if rule is None or name in rule.get("users", []) or groups.intersection(rule.get("groups", [])):
            offered.append(dict(profile, default=not offered))
    if not offered:
        raise _HTTPError(403, f"{name} may not use any server profile")
    return offered


c.KubeSpawner.profile_list = _slicehub_profiles
`;
