"""End to end: the ``attesto.no_store`` deployment hook (DESIGN.md D24) adds a deployment's own
headers (``Surrogate-Control``, ``CDN-Cache-Control``, ``Expires``) to every response attesto
marks non-cacheable, never to the cacheable discovery and JWKS documents, and can never make a
token or an error cacheable: ``Cache-Control: no-store`` and ``Pragma: no-cache`` stay
(RFC 6749 §5.1, RFC 6750 §5.3, RFC 9700).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from typing import Any

import pytest
from asrv_support import Claims, Consent, as_app, basic, stores
from pyramid.exceptions import ConfigurationExecutionError
from pyramid.interfaces import INewResponse
from pyramid.response import Response
from webtest import TestApp

from pyramid_attesto.core.stores import AuthorizationCode

TOKEN = "/oauth/token"
PAR = "/oauth/par"
AUTHORIZE = "/oauth/authorize"
REVOKE = "/oauth/revoke"
INTROSPECT = "/oauth/introspect"
USERINFO = "/oauth/userinfo"
REGISTER = "/oauth/register"
CC = {"grant_type": "client_credentials"}
SETTINGS = {
    "attesto.grant_types_supported": "authorization_code refresh_token client_credentials",
    "attesto.introspection_clients": "rs",
}
CDN = {"Surrogate-Control": "no-store", "CDN-Cache-Control": "no-store", "Expires": "0"}
PKCE = {
    "code_challenge": base64.urlsafe_b64encode(hashlib.sha256(b"v" * 64).digest())
    .rstrip(b"=")
    .decode(),
    "code_challenge_method": "S256",
}


class CDNHeaders:
    """A deployment behind a CDN: its own directives, and ``private`` added to attesto's."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, request: Any, response: Any) -> None:
        self.seen.append(request.path)
        response.headers.update(CDN)
        response.headers["Cache-Control"] = "no-store, private"


def cdn_headers(request: Any, response: Any) -> None:
    """The setting's hook (a module-level function, for dotted names)."""
    response.headers["X-From-Setting"] = "1"


def _app(hook: Any, **directives: Any) -> TestApp:
    directives.setdefault("set_attesto_consent_policy", Consent())
    return as_app(
        SETTINGS, set_attesto_no_store=hook, set_attesto_claims_provider=Claims(), **directives
    )


def _assert_hooked(res: Any) -> None:
    for name, value in CDN.items():
        assert res.headers[name] == value
    assert res.headers["Cache-Control"] == "no-store, private"
    assert res.headers["Pragma"] == "no-cache"


def _access_token(app: TestApp, client_id: str = "svc") -> str:
    res = app.post(TOKEN, CC, headers=basic(client_id), status=200)
    return str(res.json["access_token"])


def _userinfo_token(app: TestApp) -> str:
    code = secrets.token_urlsafe(32)
    stores(app).codes.put(
        code,
        AuthorizationCode(
            client_id="web",
            subject="alice",
            redirect_uri="https://app.example/cb",
            scope=("openid", "profile"),
            expires_at=int(time.time()) + 60,
        ),
    )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "https://app.example/cb",
    }
    return str(app.post(TOKEN, form, headers=basic("web"), status=200).json["access_token"])


# -- where the hook runs ---------------------------------------------------------------------


def test_hook_adds_headers_to_token_success_and_error_rfc6749_5_1() -> None:
    hook = CDNHeaders()
    app = _app(hook)
    res = app.post(TOKEN, CC, headers=basic("svc"), status=200)
    assert "access_token" in res.json
    _assert_hooked(res)
    res = app.post(TOKEN, {"grant_type": "password"}, headers=basic("svc"), status=400)
    assert res.json["error"] == "unsupported_grant_type"
    _assert_hooked(res)
    res = app.get(TOKEN, status=405)  # attesto's own 405 is an RFC 6749 §5.2 error too
    _assert_hooked(res)
    assert hook.seen == [TOKEN, TOKEN, TOKEN]  # once per response


def test_hook_adds_headers_to_par_responses_rfc9126_2_2() -> None:
    app = _app(CDNHeaders())
    form = {"response_type": "code", "client_id": "web", "redirect_uri": "https://app.example/cb"}
    res = app.post(PAR, {**form, **PKCE, "scope": "read"}, headers=basic("web"), status=201)
    assert res.json["request_uri"]
    _assert_hooked(res)
    res = app.post(PAR, {**form, "request_uri": "urn:x"}, headers=basic("web"), status=400)
    _assert_hooked(res)


def test_hook_adds_headers_to_revocation_responses_rfc7009_2_2() -> None:
    app = _app(CDNHeaders())
    token = _access_token(app)
    res = app.post(REVOKE, {"token": token}, headers=basic("svc"), status=200)
    assert res.body == b""
    _assert_hooked(res)
    res = app.post(REVOKE, {}, headers=basic("svc"), status=400)
    _assert_hooked(res)


def test_hook_adds_headers_to_introspection_responses_rfc7662_2_2() -> None:
    app = _app(CDNHeaders())
    token = _access_token(app)
    res = app.post(INTROSPECT, {"token": token}, headers=basic("rs"), status=200)
    assert res.json["active"] is True
    _assert_hooked(res)
    jwt = {**basic("rs"), "Accept": "application/token-introspection+jwt"}
    res = app.post(INTROSPECT, {"token": token}, headers=jwt, status=200)
    assert res.content_type == "application/token-introspection+jwt"
    _assert_hooked(res)
    res = app.post(INTROSPECT, {"token": token}, status=401)
    _assert_hooked(res)


def test_hook_adds_headers_to_userinfo_responses_oidc_core_5_3() -> None:
    app = _app(CDNHeaders())
    token = _userinfo_token(app)
    res = app.get(USERINFO, headers={"Authorization": f"Bearer {token}"}, status=200)
    assert res.json["sub"] == "alice"
    _assert_hooked(res)
    res = app.get(USERINFO, status=401)  # the challenge (RFC 6750 §3.1)
    _assert_hooked(res)


def test_hook_adds_headers_to_authorization_pages_but_not_a_hosts_own() -> None:
    """The local error page is attesto's (no-store, hooked); a host's login page that chose
    its own Cache-Control keeps it and is not attesto's to hook."""
    hook = CDNHeaders()

    class CachingLogin(Consent):
        def authenticate_resource_owner(self, request: Any, authorization: Any) -> object:
            response = Response("login page")
            response.headers["Cache-Control"] = "private, max-age=0"
            return response

    app = _app(hook)
    res = app.get(AUTHORIZE, {"client_id": "nobody"}, status=400)
    _assert_hooked(res)
    app = _app(hook, set_attesto_consent_policy=CachingLogin())
    query = {"response_type": "code", "client_id": "web", "redirect_uri": "https://app.example/cb"}
    res = app.get(AUTHORIZE, {**query, **PKCE, "scope": "read"}, status=200)
    assert res.text == "login page"
    assert res.headers["Cache-Control"] == "private, max-age=0"
    assert "Surrogate-Control" not in res.headers
    assert hook.seen == [AUTHORIZE]


def test_hook_adds_headers_to_registration_errors_rfc7591_3_2() -> None:
    app = as_app(
        {
            "attesto.registration.enabled": "true",
            "attesto.registration_store": "memory",
            "attesto.registration.default_scope": "read",
        },
        set_attesto_consent_policy=Consent(),
        set_attesto_no_store=CDNHeaders(),
    )
    res = app.delete(f"{REGISTER}/nobody", headers={"Authorization": "Bearer x"}, status=401)
    _assert_hooked(res)


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
    ],
)
def test_discovery_and_jwks_stay_cacheable_and_are_not_hooked_rfc8414_3(path: str) -> None:
    hook = CDNHeaders()
    res = _app(hook).get(path, status=200)
    assert "no-store" not in res.headers["Cache-Control"]
    assert "public" in res.headers["Cache-Control"]
    assert "Surrogate-Control" not in res.headers
    assert hook.seen == []


def test_resource_server_challenge_is_hooked_rfc6750_3(tmp_path: Any) -> None:
    from resource_support import Issuer, make_app

    hook = CDNHeaders()
    app = make_app(tmp_path, Issuer(), configure=lambda config: config.set_attesto_no_store(hook))
    res = app.get("/api/reports", status=401)
    assert res.headers["WWW-Authenticate"].startswith("Bearer")
    _assert_hooked(res)
    app.get("/.well-known/oauth-protected-resource", status=200)
    assert hook.seen == ["/api/reports"]


def test_both_includes_run_the_hook_once_per_response() -> None:
    """``attesto.resource`` includes the resource server too; the subscriber is still one."""
    hook = CDNHeaders()
    app = _app(hook)
    combined = as_app(
        {**SETTINGS, "attesto.resource": "https://api.example/"}, set_attesto_no_store=hook
    )
    for each in (app, combined):
        each.post(TOKEN, CC, headers=basic("svc"), status=200)
    assert hook.seen == [TOKEN, TOKEN]


# -- what the hook cannot do -----------------------------------------------------------------


def _deletes(request: Any, response: Any) -> None:
    response.headers["Surrogate-Control"] = "no-store"
    del response.headers["Cache-Control"]


def _public(request: Any, response: Any) -> None:
    response.headers["Surrogate-Control"] = "no-store"
    response.headers["Cache-Control"] = "public, max-age=3600"


def _quoted(request: Any, response: Any) -> None:
    # "no-store" inside a quoted argument is not the directive (RFC 9111 §5.2).
    response.headers["Cache-Control"] = 'private="no-store", max-age=3600'


def _second_line(request: Any, response: Any) -> None:
    del response.headers["Cache-Control"]
    response.headers.add("Cache-Control", "max-age=60")
    response.headers.add("Cache-Control", "public")


def _drops_pragma(request: Any, response: Any) -> None:
    del response.headers["Pragma"]


def _raises(request: Any, response: Any) -> None:
    response.headers["Cache-Control"] = "public"
    raise RuntimeError("host bug")


@pytest.mark.parametrize("hook", [_deletes, _public, _quoted, _second_line, _drops_pragma, _raises])
def test_a_hook_cannot_make_a_token_response_cacheable_rfc6749_5_1(
    hook: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 6749 §5.1 (MUST ``Cache-Control: no-store`` and ``Pragma: no-cache`` on a token
    response), RFC 6750 §5.3, RFC 9700: attesto's headers are restored and the failure is
    logged, without the token."""
    app = _app(hook)
    with caplog.at_level(logging.ERROR, logger="pyramid_attesto"):
        res = app.post(TOKEN, CC, headers=basic("svc"), status=200)
    assert res.headers.getall("Cache-Control") == ["no-store"]
    assert res.headers["Pragma"] == "no-cache"
    assert "access_token" in res.json
    assert "attesto.no_store" in caplog.text
    assert "restored" in caplog.text
    assert res.json["access_token"] not in caplog.text


def test_a_hook_cannot_make_an_error_cacheable_rfc6749_5_2(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RFC 6749 §5.2 errors carry no-store too (§5.1 applies to every token endpoint answer)."""
    with caplog.at_level(logging.ERROR, logger="pyramid_attesto"):
        res = _app(_public).post(
            TOKEN, {"grant_type": "password"}, headers=basic("svc"), status=400
        )
    assert res.headers["Cache-Control"] == "no-store"
    assert res.headers["Surrogate-Control"] == "no-store"  # what the hook added stays
    assert "attesto.no_store" in caplog.text


@pytest.mark.parametrize(
    "value", ["No-Store", "private, no-store", 'no-cache="Set-Cookie",no-store']
)
def test_no_store_is_recognised_token_wise_and_case_insensitively_rfc9111_5_2(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(request: Any, response: Any) -> None:
        response.headers["Cache-Control"] = value

    with caplog.at_level(logging.ERROR, logger="pyramid_attesto"):
        res = _app(hook).post(TOKEN, CC, headers=basic("svc"), status=200)
    assert res.headers["Cache-Control"] == value
    assert caplog.text == ""


# -- configuration ---------------------------------------------------------------------------


def test_the_setting_names_the_hook() -> None:
    app = as_app({"attesto.no_store": "test_e2e_no_store_hook:cdn_headers"})
    res = app.post(TOKEN, CC, headers=basic("svc"), status=200)
    assert res.headers["X-From-Setting"] == "1"
    assert res.headers["Cache-Control"] == "no-store"


def test_the_directive_wins_over_the_setting() -> None:
    app = as_app(
        {"attesto.no_store": "test_e2e_no_store_hook:cdn_headers"},
        set_attesto_no_store=CDNHeaders(),
    )
    res = app.post(TOKEN, CC, headers=basic("svc"), status=200)
    _assert_hooked(res)
    assert "X-From-Setting" not in res.headers


@pytest.mark.parametrize(
    "name", ["no_such_module_here:fn", "test_e2e_no_store_hook:TOKEN", "not a name"]
)
def test_an_unresolvable_hook_fails_at_startup_naming_the_setting(name: str) -> None:
    with pytest.raises(ConfigurationExecutionError, match=r"attesto\.no_store"):
        as_app({"attesto.no_store": name})


def test_without_a_hook_no_subscriber_is_registered() -> None:
    """The fast path: without a hook, no ``NewResponse`` subscriber, so attesto adds nothing to
    a response's path but the mark."""
    app = as_app()
    registry = app.app.registry
    handlers = [h for h in registry.registeredHandlers() if h.required == (INewResponse,)]
    assert handlers == []
    res = app.post(TOKEN, CC, headers=basic("svc"), status=200)
    assert res.headers["Cache-Control"] == "no-store"
    assert res.headers["Pragma"] == "no-cache"
