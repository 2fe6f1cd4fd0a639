"""End to end: token revocation (RFC 7009) at ``POST /oauth/revoke``."""

from __future__ import annotations

import secrets
import time

import pytest
from asrv_support import as_app, basic, events, stores, verify_access_token
from webtest import TestApp

from pyramid_attesto.core.stores import AuthorizationCode

REVOKE = "/oauth/revoke"
TOKEN = "/oauth/token"
GRANTS = {"attesto.grant_types_supported": "authorization_code refresh_token client_credentials"}


def _app() -> TestApp:
    return as_app(GRANTS)


def _web_tokens(app: TestApp) -> dict[str, str]:
    code = secrets.token_urlsafe(32)
    stores(app).codes.put(
        code,
        AuthorizationCode(
            client_id="web",
            subject="alice",
            redirect_uri="https://app.example/cb",
            scope=("read",),
            expires_at=int(time.time()) + 60,
        ),
    )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "https://app.example/cb",
    }
    return dict(app.post(TOKEN, form, headers=basic("web"), status=200).json)


def _ok(res: object) -> None:
    assert res.status_int == 200  # type: ignore[attr-defined]
    assert res.body == b""  # type: ignore[attr-defined]
    assert res.headers["Cache-Control"] == "no-store"  # type: ignore[attr-defined]


def test_revoking_a_refresh_token_revokes_its_family_rfc7009_2_1() -> None:
    app = _app()
    seen = events(app)
    tokens = _web_tokens(app)
    form = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    _ok(app.post(REVOKE, form, headers=basic("web")))
    assert seen[-1].name == "token_revoked"
    assert tokens["refresh_token"] not in repr(seen)
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    res = app.post(TOKEN, refresh, headers=basic("web"), status=400)
    assert res.json["error"] == "invalid_grant"


def test_revoking_an_access_token_denies_it_rfc7009_2_1() -> None:
    app = _app()
    tokens = _web_tokens(app)
    _ok(app.post(REVOKE, {"token": tokens["access_token"]}, headers=basic("web")))
    jti = verify_access_token(app, tokens["access_token"]).jti
    assert stores(app).revoked_access_tokens.is_revoked(jti)


def test_wrong_hint_still_finds_the_token_rfc7009_2_1() -> None:
    app = _app()
    tokens = _web_tokens(app)
    form = {"token": tokens["refresh_token"], "token_type_hint": "access_token"}
    _ok(app.post(REVOKE, form, headers=basic("web")))
    assert stores(app).refresh_tokens.get(tokens["refresh_token"]) is None


def test_unknown_hint_is_ignored_rfc7009_2_1() -> None:
    app = _app()
    tokens = _web_tokens(app)
    form = {"token": tokens["access_token"], "token_type_hint": "id_token"}
    _ok(app.post(REVOKE, form, headers=basic("web")))


@pytest.mark.parametrize("token", ["unknown", "a.b.c", "x" * 20000])
def test_unknown_token_is_200_rfc7009_2_2(token: str) -> None:
    _ok(_app().post(REVOKE, {"token": token}, headers=basic("web")))


def test_another_clients_token_is_not_revoked_and_still_200_rfc7009_2_1() -> None:
    app = _app()
    tokens = _web_tokens(app)
    _ok(app.post(REVOKE, {"token": tokens["refresh_token"]}, headers=basic("svc")))
    _ok(app.post(REVOKE, {"token": tokens["access_token"]}, headers=basic("svc")))
    assert stores(app).refresh_tokens.get(tokens["refresh_token"]) is not None
    jti = verify_access_token(app, tokens["access_token"]).jti
    assert not stores(app).revoked_access_tokens.is_revoked(jti)


def test_public_client_revokes_its_own_token_rfc7009_2_1() -> None:
    app = _app()
    res = app.post(REVOKE, {"token": "whatever", "client_id": "pub"}, status=200)
    _ok(res)


def test_missing_token_is_invalid_request_rfc7009_2_1() -> None:
    res = _app().post(REVOKE, {}, headers=basic("web"), status=400)
    assert res.json == {
        "error": "invalid_request",
        "error_description": "the token parameter is required",
    }
    assert res.headers["Cache-Control"] == "no-store"


def test_unauthenticated_caller_is_invalid_client_rfc7009_2_1() -> None:
    res = _app().post(REVOKE, {"token": "x"}, status=401)
    assert res.json["error"] == "invalid_client"
    res = _app().post(REVOKE, {"token": "x"}, headers=basic("web", "bad"), status=401)
    assert res.json["error"] == "invalid_client"


def test_bad_input_rfc7009_2_1() -> None:
    app = _app()
    res = app.get(REVOKE, status=405)
    assert res.headers["Allow"] == "POST"
    res = app.post(REVOKE, [("token", "a"), ("token", "b")], headers=basic("web"), status=400)
    assert res.json["error"] == "invalid_request"
    res = app.post_json(REVOKE, {"token": "a"}, headers=basic("web"), status=400)
    assert res.json["error"] == "invalid_request"
    res = app.post(
        REVOKE,
        b"token=%FF",
        headers={**basic("web"), "Content-Type": "application/x-www-form-urlencoded"},
        status=400,
    )
    assert res.json["error"] == "invalid_request"
    res = app.post(
        REVOKE,
        {"token": "x"},
        headers=basic("web"),
        extra_environ={"wsgi.url_scheme": "http"},
        status=400,
    )
    assert res.json["error_description"] == "this endpoint is served over https only"


def test_revocation_is_advertised_rfc8414_2() -> None:
    doc = _app().get("/.well-known/oauth-authorization-server").json
    assert doc["revocation_endpoint"] == "https://id.example/oauth/revoke"
    assert (
        doc["revocation_endpoint_auth_methods_supported"]
        == doc["token_endpoint_auth_methods_supported"]
    )
