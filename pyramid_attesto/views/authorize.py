"""The authorization endpoint, ``GET``/``POST {prefix}/authorize`` (RFC 6749 §3.1, §4.1.1),
and the pushed authorization request endpoint, ``POST {prefix}/par`` (RFC 9126 §2).

Authorize: parse the query (or the form body of a POST), resolve or validate the request
(:class:`~pyramid_attesto.core.authorize.AuthorizationService`), then ask the host's
:class:`~pyramid_attesto.core.host.ConsentPolicy` who the user is and whether they consent;
either may answer with its own response (a login or consent page). ``request.attesto_authorization``
holds the :class:`~pyramid_attesto.core.authorize.PendingAuthorization` while they run.

A ``request`` parameter (a signed request object, RFC 9101) is verified here and at PAR
under ``attesto.request_object_policy``. Responses go out in the requested response mode: a
redirect (``query``, ``fragment`` and their JARM ``.jwt`` forms) or, for ``form_post`` and
``form_post.jwt``, a self-submitting page (:func:`form_post_page`) whose one script runs
under a per-response CSP nonce.

Errors found before the client and redirect URI are validated are shown on a local page
(status 400, DESIGN.md rule 5); later ones are redirected with ``state`` and ``iss`` (signed
in a JARM mode). Every
page and redirect sends the D15 headers (``Content-Security-Policy: frame-ancestors 'none'``,
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``) and ``Cache-Control:
no-store``; a redirect after a POST is a 303.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlsplit

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response

from pyramid_attesto.core.authorization import (
    LocalAuthorizationError,
    RedirectableAuthorizationError,
)
from pyramid_attesto.core.authorize import Authenticated, PendingAuthorization
from pyramid_attesto.core.dpop import single_dpop_header
from pyramid_attesto.core.errors import (
    AccessDenied,
    ConsentRequired,
    InvalidRequest,
    LoginRequired,
    OAuthError,
)
from pyramid_attesto.core.jarm import AuthorizationResponse, FormPostResponse
from pyramid_attesto.core.registration import DynamicClient
from pyramid_attesto.core.secret import generate_secret
from pyramid_attesto.responses import NO_STORE, json_response, oauth_error_response
from pyramid_attesto.server import get_server
from pyramid_attesto.views._http import (
    check_https,
    method_not_allowed,
    parse_form,
    parse_pairs,
)
from pyramid_attesto.views.token import authenticate

__all__ = [
    "BROWSER_COOKIE",
    "BROWSER_HEADERS",
    "authorize_view",
    "form_post_page",
    "par_view",
]

BROWSER_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    **NO_STORE,
}
_MAX_QUERY = 16384
BROWSER_COOKIE = "attesto_authz"
"""Binds a parked authorization request to the browser that started it (D13)."""
_MIN_BROWSER_SECRET = 32


def _browser(response: Response) -> Response:
    # A host's login or consent page keeps its own Cache-Control; one without gets attesto's
    # no-store, and with it the attesto.no_store hook.
    if "Cache-Control" not in response.headers:
        response.attesto_no_store = True
    for name, value in BROWSER_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def error_page(error: OAuthError) -> Response:
    """A local error page: the error code and our own description, HTML-escaped."""
    description = html.escape(error.description or "")
    body = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<title>Authorization error</title></head><body>"
        "<h1>The authorization request cannot be processed</h1>"
        f"<p><code>{html.escape(error.error)}</code>: {description}</p></body></html>"
    )
    response = Response(body=body.encode("utf-8"), status=error.status, content_type="text/html")
    response.headers["x-tm"] = "commit"
    return _browser(response)


_CSP_ORIGIN = re.compile(r"\A[a-z][a-z0-9+.\-]*://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?\Z")


def _form_action(action: str) -> str:
    """The CSP ``form-action`` source of the redirect URI: its origin, or its scheme when the
    origin is not expressible as a CSP host source (an IPv6 literal)."""
    parts = urlsplit(action)
    origin = f"{parts.scheme.lower()}://{parts.netloc}"
    if _CSP_ORIGIN.match(origin):
        return origin
    return f"{parts.scheme.lower()}:"


def form_post_page(answer: FormPostResponse) -> Response:
    """OAuth 2.0 Form Post Response Mode §2 (and JARM's ``form_post.jwt``): a page whose one
    form posts the response parameters to the redirect URI, submitted by a script that runs
    only with this response's CSP nonce (no other script, style or resource may load,
    DESIGN.md D15); without scripts the user presses the button."""
    nonce = generate_secret()
    fields = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in answer.fields.items()
    )
    body = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<title>Submit this form</title></head><body>"
        f'<form method="post" action="{html.escape(answer.action)}">{fields}'
        "<noscript><p>Press the button to return to the application.</p>"
        '<button type="submit">Continue</button></noscript></form>'
        f'<script nonce="{nonce}">document.forms[0].submit();</script></body></html>'
    )
    response = Response(body=body.encode("utf-8"), status=200, content_type="text/html")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; "
        f"form-action {_form_action(answer.action)}; base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers["x-tm"] = "commit"
    return _browser(response)


def _deliver(answer: AuthorizationResponse, method: str) -> Response:
    if isinstance(answer, FormPostResponse):
        return form_post_page(answer)
    response = Response(status=303 if method == "POST" else 302)
    response.location = answer.location
    response.headers["x-tm"] = "commit"
    return _browser(response)


def _params(request: Any, max_bytes: int) -> dict[str, list[str]]:
    if request.method == "POST":
        return parse_form(request, max_bytes)
    raw = request.environ.get("QUERY_STRING", "")
    if len(raw) > _MAX_QUERY:
        raise InvalidRequest("the request is too large", reason="too_large")
    return parse_pairs(raw.encode("latin-1", "replace"))


def authorize_view(request: Any) -> Response:
    server = get_server(request.registry)
    endpoint = server.authorize
    if endpoint is None:
        return HTTPNotFound()
    if request.method not in ("GET", "POST"):
        return method_not_allowed(("GET", "POST"))
    stores = request.attesto_stores
    service = endpoint.service
    browser = request.cookies.get(BROWSER_COOKIE) or ""
    fresh = len(browser) < _MIN_BROWSER_SECRET
    if fresh:
        browser = generate_secret()
    try:
        try:
            params = _params(request, server.settings.max_body_bytes)
        except OAuthError as exc:
            raise LocalAuthorizationError(exc) from None
        pending = service.start(params, stores, browser)
        request.attesto_authorization = pending
        response = _decide(request, endpoint.consent, service, pending, stores)
    except LocalAuthorizationError as error:
        return error_page(error)
    except RedirectableAuthorizationError as error:
        if _untrusted(server, params):
            # D16, RFC 9700 §4.11.2: no redirect to an untrusted client before the user acted.
            return error_page(LocalAuthorizationError(error.cause))
        try:
            # In the response mode asked for: a JARM mode signs the error too (JARM §2.2).
            answer = service.error_response(error)
        except LocalAuthorizationError as local:
            return error_page(local)
        return _deliver(answer, request.method)
    if fresh and not pending.pushed:
        response.set_cookie(
            BROWSER_COOKIE,
            browser,
            max_age=server.settings.par_ttl,
            path=server.route_prefix + "/authorize",
            secure=server.adapter.scheme(request.environ) == "https",
            httponly=True,
            samesite="Lax",
        )
    return response


def _untrusted(server: Any, params: dict[str, list[str]]) -> bool:
    """Whether the request's client registered itself or is a metadata document (D16)."""
    values = params.get("client_id") or []
    if len(values) != 1 or server.token is None:
        return False
    return isinstance(server.token.client_store.load_client(values[0]), DynamicClient)


def _decide(
    request: Any, consent: Any, service: Any, pending: PendingAuthorization, stores: Any
) -> Response:
    prompt_none = "none" in pending.request.prompt
    owner = consent.authenticate_resource_owner(request, pending)
    if isinstance(owner, Response):
        if prompt_none:
            return _deny(service, pending, stores, LoginRequired("the user must log in"))
        return _browser(owner)
    if owner is None:
        return _deny(
            service, pending, stores, LoginRequired("the user is not logged in", reason="login")
        )
    if isinstance(owner, str):
        owner = Authenticated(owner)
    if not isinstance(owner, Authenticated) or not owner.subject:
        raise TypeError("authenticate_resource_owner returned neither a user nor a response")
    max_age = pending.request.max_age
    if max_age is not None and (
        owner.auth_time is None or service.clock.now() - owner.auth_time > max_age
    ):
        # OIDC Core §3.1.2.1: the user must have authenticated within max_age seconds.
        return _deny(
            service,
            pending,
            stores,
            LoginRequired("the authentication is older than max_age", reason="max_age"),
        )
    decision = consent.consent(request, pending, owner.subject)
    if isinstance(decision, Response):
        if prompt_none:
            return _deny(service, pending, stores, ConsentRequired("consent is required"))
        return _browser(decision)
    if decision is not True:
        return _deny(
            service,
            pending,
            stores,
            AccessDenied("the user denied the request", reason="denied"),
            interacted=True,
        )
    return _deliver(service.issue_code(pending, owner, stores), request.method)


def _deny(
    service: Any,
    pending: PendingAuthorization,
    stores: Any,
    cause: OAuthError,
    *,
    interacted: bool = False,
) -> Response:
    service.drop(pending, stores)
    if not interacted and isinstance(pending.client, DynamicClient):
        # D16, RFC 9700 §4.11.2: an untrusted client gets no redirect the user did not cause.
        return error_page(LocalAuthorizationError(cause))
    return _deliver(service.deny(pending, cause), "GET")


def par_view(request: Any) -> Response:
    """RFC 9126 §2: ``201`` with ``request_uri`` and ``expires_in``; errors as RFC 6749 §5.2
    JSON (§2.3)."""
    server = get_server(request.registry)
    endpoint = server.authorize
    token = server.token
    if endpoint is None or token is None:
        return HTTPNotFound()
    if request.method != "POST":
        return method_not_allowed(("POST",))
    try:
        check_https(request, server.adapter, server.settings.require_https)
        form = parse_form(request, server.settings.max_body_bytes)
        client = authenticate(request, server, token, form, "par")
        proof = None
        header = request.headers.get("DPoP")
        if header is not None and token.dpop is not None:
            proof = token.dpop.verify(
                single_dpop_header([header]),
                htm="POST",
                htu=server.request_urls("par"),
                nonces=token.nonces,
            )
        pushed = endpoint.service.push(form, client.client, request.attesto_stores, proof)
    except OAuthError as error:
        return oauth_error_response(error)
    response = json_response(
        {"request_uri": pushed.request_uri, "expires_in": pushed.expires_in}, status=201
    )
    if token.nonces is not None:
        response.headers["DPoP-Nonce"] = token.nonces.issue()
    return response
