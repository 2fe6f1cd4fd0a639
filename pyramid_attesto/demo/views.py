"""The demo's own routes: the home page, ``/login``, ``/logout``, ``/consent``, ``/account``
(remembered consents, revocation), ``/callback`` (the seeded web client's redirect target),
the protected API (``/api/reports``, ``/api/me``) and ``/mcp``.

CSRF: every form carries the session's token and Pyramid checks it on every POST of these
routes (``config.set_default_csrf_options(require_csrf=True)``); a missing or wrong token is
refused with ``400``.
"""

from __future__ import annotations

import time
from typing import Any

from pyramid.csrf import new_csrf_token
from pyramid.exceptions import BadCSRFOrigin, BadCSRFToken
from pyramid.httpexceptions import HTTPForbidden, HTTPSeeOther
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from pyramid_attesto.policy import resource_server

from . import mcp, pages
from .host import (
    SESSION_AUTH_TIME,
    SESSION_FRESH_LOGIN,
    SESSION_USER,
    USERS,
    ConsentRecords,
    check_password,
    record_decision,
)
from .pages import csrf_field, e, page

__all__ = ["add_views"]

_PUBLIC = NO_PERMISSION_REQUIRED


def _records(request: Any) -> ConsentRecords:
    records: ConsentRecords = request.registry.settings["demo.consent_records"]
    return records


def _authorize_prefix(request: Any) -> str:
    """The authorization endpoint's URL on the issuer's origin (as the resume URL has it)."""
    origin: str = request.registry.settings["demo.origin"]
    path: str = request.route_path("attesto.authorize")
    return origin + path


def _safe_next(request: Any, value: str) -> str | None:
    """Only the authorization endpoint's own resume URL is a valid target (no open redirect)."""
    return value if value.startswith(_authorize_prefix(request) + "?") else None


def _see_other(location: str) -> Response:
    response = HTTPSeeOther(location=location)
    response.headers.update(pages.PAGE_HEADERS)
    return response


def css_view(request: Any) -> Response:
    response = Response(pages.CSS, content_type="text/css", charset="utf-8")
    response.cache_control.max_age = 3600
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def home_view(request: Any) -> Response:
    settings = request.registry.settings
    issuer = e(settings["attesto.issuer"])
    user = request.session.get(SESSION_USER)
    who = (
        f"<p>Signed in as <strong>{e(user)}</strong> · <a href=/account>your account</a></p>"
        if user
        else "<p>Not signed in.</p>"
    )
    start = request.route_url("demo.start")
    body = (
        "<h1>pyramid_attesto demo</h1>"
        f"{who}"
        f"<p>Issuer: <code>{issuer}</code> · "
        f'<a href="{issuer}/.well-known/oauth-authorization-server">metadata</a> · '
        f'<a href="{issuer}/.well-known/oauth-protected-resource/mcp">resource metadata</a></p>'
        f'<p><a href="{e(start)}">Try the authorization code flow in this browser</a> '
        "(client <code>demo-web</code>, PKCE, lands on <code>/callback</code> with a code).</p>"
        f"{pages.users_table()}"
    )
    return page("Home", body)


def start_view(request: Any) -> Response:
    """Start a code flow for the seeded web client (PKCE S256; the verifier stays in the
    session so ``/callback`` can show the token request)."""
    import base64
    import hashlib
    import secrets
    from urllib.parse import urlencode

    from .host import CONFIDENTIAL_CLIENT_ID

    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(16)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    request.session["demo.verifier"] = verifier
    request.session["demo.state"] = state
    origin = request.registry.settings["demo.origin"]
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CONFIDENTIAL_CLIENT_ID,
            "redirect_uri": f"{origin}/callback",
            "scope": "openid profile read:reports",
            "state": state,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "resource": f"{origin}/api",
        }
    )
    return _see_other(_authorize_prefix(request) + "?" + query)


def login_view(request: Any) -> Response:
    """``POST /login``: check the password, start the session, go back to the authorization
    request (303, D15)."""
    form = request.POST
    next_url = _safe_next(request, form.get("next", ""))
    handle = form.get("ticket", "")
    if next_url is None:
        return page("Sign in", "<h1>Sign in</h1><p class=error>Unknown request.</p>", status=400)
    user = check_password(form.get("username", "")[:64], form.get("password", ""))
    if user is None:
        return pages.login_page(request, next_url, handle, error="Wrong username or password.")
    request.session.invalidate()  # a fresh session on login (no fixation)
    request.session[SESSION_USER] = user.username
    request.session[SESSION_AUTH_TIME] = int(time.time())
    request.session[SESSION_FRESH_LOGIN] = handle
    new_csrf_token(request)
    return _see_other(next_url)


def consent_view(request: Any) -> Response:
    """``POST /consent``: Allow or Deny, then back to the authorization request, which
    answers with a code or ``access_denied``."""
    decision = request.POST.get("decision")
    handle = request.POST.get("ticket", "")
    if decision not in ("allow", "deny"):
        return page(
            "Consent", "<h1>Consent</h1><p class=error>Choose Allow or Deny.</p>", status=400
        )
    resume = record_decision(request, _records(request), handle, decision == "allow")
    if resume is None:
        body = "<h1>Consent</h1><p class=error>This request has expired; start again.</p>"
        return page("Consent", body, status=400)
    return _see_other(resume)


def account_view(request: Any) -> Response:
    user = request.session.get(SESSION_USER)
    if user not in USERS:
        return page("Account", "<h1>Account</h1><p>Not signed in. <a href=/>Home</a></p>")
    rows = []
    for record in _records(request).for_subject(user):
        rows.append(
            "<tr>"
            f"<td><code>{e(record.client_id)}</code></td>"
            f"<td>{e(' '.join(record.scopes))}</td>"
            f"<td>{e(' '.join(record.resources) or '(default)')}</td>"
            "<td><form method=post action=/account/revoke>"
            f"{csrf_field(request)}"
            f'<input type=hidden name=client_id value="{e(record.client_id)}">'
            f'<button type=submit class=secondary aria-label="Revoke {e(record.client_id)}">'
            "Revoke</button></form></td></tr>"
        )
    table = (
        "<table><thead><tr><th scope=col>Client</th><th scope=col>Scopes</th>"
        "<th scope=col>Resources</th><th scope=col></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p>No remembered consents.</p>"
    )
    body = (
        f"<h1>Account of {e(user)}</h1><h2>Remembered consents</h2>{table}"
        f"<form method=post action=/logout>{csrf_field(request)}"
        "<button type=submit class=secondary>Sign out</button></form>"
    )
    return page("Account", body)


def revoke_view(request: Any) -> Response:
    """Forget a consent and revoke every refresh-token family of (user, client) (D12)."""
    user = request.session.get(SESSION_USER)
    client_id = request.POST.get("client_id", "")
    if user in USERS and client_id:
        _records(request).revoke(user, client_id)
        request.attesto_stores.refresh_tokens.revoke_for(user, client_id)
    return _see_other(request.route_url("demo.account"))


def logout_view(request: Any) -> Response:
    request.session.invalidate()
    return _see_other(request.route_url("demo.home"))


def callback_view(request: Any) -> Response:
    """The seeded web client's redirect URI: shows what the authorization server sent."""
    params = request.GET
    if "error" in params:
        body = (
            "<h1>Authorization failed</h1>"
            f"<p><code>error={e(params.get('error', '')[:64])}</code></p>"
            "<p><a href=/>Home</a></p>"
        )
        return page("Callback", body)
    code = params.get("code", "")[:512]
    state_ok = params.get("state") == request.session.get("demo.state")
    verifier = request.session.get("demo.verifier", "VERIFIER")
    origin = request.registry.settings["demo.origin"]
    token = request.route_url("attesto.token")
    curl = (
        f"curl -s -u demo-web:demo-web-secret-do-not-use-in-production {token} \\\n"
        f"  -d grant_type=authorization_code -d code={code} \\\n"
        f"  -d redirect_uri={origin}/callback -d code_verifier={verifier}"
    )
    body = (
        "<h1>Authorization code received</h1>"
        f"<p>code: <code id=code>{e(code)}</code></p>"
        f"<p>state {'matches' if state_ok else '<strong>does not match</strong>'}; "
        f"iss: <code>{e(params.get('iss', '')[:256])}</code></p>"
        f"<p>Exchange it (within a minute):</p><pre>{e(curl)}</pre><p><a href=/>Home</a></p>"
    )
    return page("Callback", body)


def csrf_failure_view(exc: Any, request: Any) -> Response:
    body = (
        "<h1>Request refused</h1><p class=error role=alert>The form's security token is "
        "missing or wrong. Go back, reload the page and try again.</p>"
    )
    return page("Refused", body, status=400)


def reports_view(request: Any) -> Response:
    identity = request.identity
    subject = identity.subject if identity.is_user else None
    return _api({"reports": mcp.reports_for(subject)})


def me_view(request: Any) -> Response:
    """Any valid access token for this API (no particular scope)."""
    allowed = resource_server(request.registry).check(request)
    if not allowed:
        raise HTTPForbidden(allowed.msg, result=allowed)
    identity = request.identity
    return _api(
        {
            "sub": identity.subject,
            "kind": identity.kind,
            "client_id": identity.client_id,
            "scope": " ".join(identity.scopes),
            "token_type": identity.token_type,
            "sender_constrained": identity.sender_constrained,
        }
    )


def _api(payload: object) -> Response:
    response = Response(json_body=payload)
    response.headers["Cache-Control"] = "no-store"
    return response


def add_views(config: Any) -> None:
    config.add_route("demo.css", "/demo.css")
    config.add_view(css_view, route_name="demo.css", permission=_PUBLIC)
    for name, path, view, method in (
        ("demo.home", "/", home_view, "GET"),
        ("demo.start", "/start", start_view, "GET"),
        ("demo.login", "/login", login_view, "POST"),
        ("demo.logout", "/logout", logout_view, "POST"),
        ("demo.consent", "/consent", consent_view, "POST"),
        ("demo.account", "/account", account_view, "GET"),
        ("demo.revoke", "/account/revoke", revoke_view, "POST"),
        ("demo.callback", "/callback", callback_view, "GET"),
    ):
        config.add_route(name, path, request_method=method)
        config.add_view(view, route_name=name, permission=_PUBLIC)
    config.add_exception_view(csrf_failure_view, context=BadCSRFToken)
    config.add_exception_view(csrf_failure_view, context=BadCSRFOrigin)

    config.add_route("demo.reports", "/api/reports", request_method="GET")
    config.add_view(reports_view, route_name="demo.reports", permission="read:reports")
    config.add_route("demo.me", "/api/me", request_method="GET")
    config.add_view(me_view, route_name="demo.me", permission=_PUBLIC)

    config.add_route("demo.mcp", "/mcp")
    config.add_view_predicate("demo_bad_origin", _BadOriginPredicate)
    config.add_view(
        mcp.forbidden_origin_view,
        route_name="demo.mcp",
        demo_bad_origin=True,
        permission=_PUBLIC,
        require_csrf=False,  # bearer tokens, no cookies: CSRF does not apply; Origin is checked
    )
    config.add_view(
        mcp.mcp_view,
        route_name="demo.mcp",
        request_method="POST",
        permission="read:reports",
        require_csrf=False,
    )
    config.add_view(
        mcp.not_allowed_view,
        route_name="demo.mcp",
        request_method=("GET", "DELETE", "PUT", "PATCH"),
        permission=_PUBLIC,
        require_csrf=False,
    )


class _BadOriginPredicate:
    def __init__(self, value: object, config: object) -> None:
        self.value = bool(value)

    def text(self) -> str:
        return f"demo_bad_origin = {self.value}"

    phash = text

    def __call__(self, context: Any, request: Any) -> bool:
        return mcp.bad_origin(context, request) is self.value
