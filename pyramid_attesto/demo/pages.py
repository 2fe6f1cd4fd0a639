"""The demo's HTML pages: plain, accessible (labels, landmarks, focus styles, no script), and
sent with the DESIGN.md D15 headers. Everything shown is HTML-escaped; no raw request
parameter is echoed."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from pyramid.csrf import get_csrf_token
from pyramid.response import Response

__all__ = ["CSS", "PAGE_HEADERS", "consent_page", "login_page", "page"]

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}
"""D15: no framing, no referrer, no third-party resources, nothing cached."""

CSS = """\
:root { color-scheme: light dark; --accent: #0b57d0; --fg: #1b1b1f; --bg: #fdfcff; }
@media (prefers-color-scheme: dark) { :root { --accent: #a8c7fa; --fg: #e3e2e6; --bg: #1b1b1f; } }
body { font: 1rem/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg);
       max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; }
label { display: block; margin-top: .75rem; font-weight: 600; }
input[type=text], input[type=password] { font: inherit; width: 100%; max-width: 20rem;
       padding: .4rem; border: 1px solid currentColor; border-radius: .25rem; }
button { font: inherit; margin: 1rem .5rem 0 0; padding: .5rem 1.25rem; border-radius: .25rem;
         border: 2px solid var(--accent); background: var(--accent); color: var(--bg);
         cursor: pointer; }
button.secondary { background: transparent; color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
table { border-collapse: collapse; } td, th { padding: .25rem .75rem; text-align: left; }
code, pre { font-family: ui-monospace, monospace; }
pre { white-space: pre-wrap; word-break: break-all; }
.note { border-left: 4px solid var(--accent); padding: .25rem .75rem; }
.error { border-left: 4px solid #b3261e; padding: .25rem .75rem; }
"""

SCOPE_TEXT = {
    "openid": "Sign you in and tell the app your user id",
    "profile": "Read your name",
    "email": "Read your email address",
    "offline_access": "Keep access while you are away (refresh tokens)",
    "read:reports": "Read your reports",
}


def e(value: object) -> str:
    """HTML-escape ``value`` (quotes too)."""
    return html.escape(str(value), quote=True)


def page(title: str, body: str, *, status: int = 200) -> Response:
    """A complete page with the D15 headers."""
    document = (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f'<title>{e(title)} · pyramid_attesto demo</title><link rel=stylesheet href="/demo.css">'
        f"</head><body><main>\n{body}\n</main></body></html>\n"
    )
    response = Response(document, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(PAGE_HEADERS)
    return response


def csrf_field(request: Any) -> str:
    return f'<input type=hidden name=csrf_token value="{e(get_csrf_token(request))}">'


def users_table() -> str:
    from .host import DEMO_PASSWORDS

    rows = "".join(
        f"<tr><td><code>{e(u)}</code></td><td><code>{e(p)}</code></td></tr>"
        for u, p in DEMO_PASSWORDS.items()
    )
    return (
        "<p class=note>Demo users (this is a demo: the passwords are shown on purpose):</p>"
        f"<table><thead><tr><th scope=col>Username</th><th scope=col>Password</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def login_page(request: Any, resume: str, handle: str, *, error: str | None = None) -> Response:
    """The login form; it posts to ``/login`` and comes back to ``resume`` (the authorization
    endpoint's resume URL)."""
    message = f"<p class=error role=alert>{e(error)}</p>" if error else ""
    body = (
        "<h1>Sign in</h1>"
        f"{message}"
        '<form method=post action="/login">'
        f"{csrf_field(request)}"
        f'<input type=hidden name=next value="{e(resume)}">'
        f'<input type=hidden name=ticket value="{e(handle)}">'
        "<label for=username>Username</label>"
        "<input type=text id=username name=username autocomplete=username required autofocus>"
        "<label for=password>Password</label>"
        "<input type=password id=password name=password autocomplete=current-password required>"
        "<div><button type=submit>Sign in</button></div>"
        "</form>"
        f"{users_table()}"
    )
    return page("Sign in", body)


def _list(items: Iterable[str]) -> str:
    return "".join(f"<li>{item}</li>" for item in items)


def consent_page(
    request: Any, authorization: Any, subject: str, handle: str, scopes: Sequence[str]
) -> Response:
    """Client name, redirect host, requested scopes and resources; Allow / Deny."""
    client = authorization.client
    name = client.client_name or client.client_id
    redirect_host = urlsplit(authorization.request.redirect_uri).netloc
    scope_items = (
        _list(f"<code>{e(s)}</code> — {e(SCOPE_TEXT.get(s, 'Access to ' + s))}" for s in scopes)
        or "<li>No scopes</li>"
    )
    resources = authorization.request.resources
    resource_part = (
        f"<p>for the resource(s):</p><ul>{_list(f'<code>{e(r)}</code>' for r in resources)}</ul>"
        if resources
        else ""
    )
    body = (
        f"<h1>Allow <q>{e(name)}</q> to access your account?</h1>"
        f"<p>Signed in as <strong>{e(subject)}</strong>.</p>"
        f"<p><strong>{e(name)}</strong> (client id <code>{e(client.client_id)}</code>) "
        f"will be sent back to <strong>{e(redirect_host)}</strong>.</p>"
        f"<p>It asks to:</p><ul>{scope_items}</ul>{resource_part}"
        '<form method=post action="/consent">'
        f"{csrf_field(request)}"
        f'<input type=hidden name=ticket value="{e(handle)}">'
        "<button type=submit name=decision value=allow>Allow</button>"
        "<button type=submit name=decision value=deny class=secondary>Deny</button>"
        "</form>"
        "<p>You can revoke this later on <a href=/account>your account page</a>.</p>"
    )
    return page("Consent", body)
