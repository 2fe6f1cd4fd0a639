"""End to end: token introspection (RFC 7662) at ``POST /oauth/introspect``, and the JWT
response of RFC 9701."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import pytest
from asrv_support import DPoPKey, as_app, basic, stores
from webtest import TestApp

from pyramid_attesto.core.stores import AuthorizationCode

INTROSPECT = "/oauth/introspect"
TOKEN = "/oauth/token"
SETTINGS = {
    "attesto.grant_types_supported": "authorization_code refresh_token client_credentials",
    "attesto.introspection_clients": "rs",
}
INACTIVE = {"active": False}


def _app() -> TestApp:
    return as_app(SETTINGS)


def _cc(app: TestApp, client_id: str = "svc", **headers: str) -> dict[str, str]:
    res = app.post(
        TOKEN, {"grant_type": "client_credentials"}, headers={**basic(client_id), **headers}
    )
    return dict(res.json)


def test_active_access_token_rfc7662_2_2() -> None:
    app = _app()
    token = _cc(app)["access_token"]
    res = app.post(INTROSPECT, {"token": token}, headers=basic("svc"), status=200)
    assert res.headers["Cache-Control"] == "no-store"
    body = res.json
    assert body["active"] is True
    assert body["client_id"] == "svc"
    assert body["sub"] == "svc"
    assert body["scope"] == "read write"
    assert body["token_type"] == "Bearer"
    assert body["iss"] == "https://id.example"
    assert body["aud"] == "https://id.example"
    assert {"exp", "iat", "jti"} <= set(body)


def test_dpop_bound_token_has_cnf_and_type_rfc9449_6_2() -> None:
    app = _app()
    key = DPoPKey()
    token = _cc(app, DPoP=key.proof())["access_token"]
    body = app.post(INTROSPECT, {"token": token}, headers=basic("svc")).json
    assert body["token_type"] == "DPoP"
    assert body["cnf"] == {"jkt": key.jkt}


def test_resource_server_may_introspect_other_clients_tokens_rfc7662_2_1() -> None:
    app = _app()
    token = _cc(app)["access_token"]
    assert app.post(INTROSPECT, {"token": token}, headers=basic("rs")).json["active"] is True


def test_other_clients_may_not_see_the_token_rfc7662_2_2() -> None:
    app = _app()
    token = _cc(app)["access_token"]
    res = app.post(INTROSPECT, {"token": token}, headers=basic("svc-post"), expect_errors=True)
    assert res.status_int == 401  # svc-post authenticates with client_secret_post
    form = {"token": token, "client_id": "svc-post", "client_secret": "post-secret-0123456789"}
    assert app.post(INTROSPECT, form).json == INACTIVE


@pytest.mark.parametrize("token", ["nope", "a.b.c", "x" * 20000, "e30.e30.e30"])
def test_invalid_tokens_are_inactive_rfc7662_2_2(token: str) -> None:
    assert _app().post(INTROSPECT, {"token": token}, headers=basic("svc")).json == INACTIVE


def test_revoked_access_token_is_inactive_rfc7662_2_2() -> None:
    app = _app()
    token = _cc(app)["access_token"]
    app.post("/oauth/revoke", {"token": token}, headers=basic("svc"), status=200)
    assert app.post(INTROSPECT, {"token": token}, headers=basic("svc")).json == INACTIVE


def test_refresh_token_introspection_rfc7662_2_2() -> None:
    app = _app()
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
    tokens = app.post(TOKEN, form, headers=basic("web")).json
    body = app.post(
        INTROSPECT,
        {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        headers=basic("web"),
    ).json
    assert body["active"] is True
    assert body["client_id"] == "web"
    assert body["sub"] == "alice"
    assert "token_type" not in body
    # Rotated: the old refresh token is no longer active.
    app.post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic("web"),
    )
    assert (
        app.post(INTROSPECT, {"token": tokens["refresh_token"]}, headers=basic("web")).json
        == INACTIVE
    )


def test_public_client_may_not_introspect_rfc7662_2_1() -> None:
    res = _app().post(INTROSPECT, {"token": "x", "client_id": "pub"}, status=401)
    assert res.json["error"] == "invalid_client"
    # RFC 9110 §15.5.2: a 401 carries a challenge; RFC 6749 §5.2 names the scheme to use.
    assert res.headers["WWW-Authenticate"].startswith("Basic ")


def test_public_client_without_basic_on_is_a_400_rfc6749_5_2() -> None:
    # Without client_secret_basic there is no scheme to challenge with: RFC 6749 §5.2 400.
    methods = {"attesto.token_endpoint_auth_methods": "client_secret_post none"}
    res = as_app({**SETTINGS, **methods}).post(
        INTROSPECT, {"token": "x", "client_id": "pub"}, status=400
    )
    assert res.json["error"] == "invalid_client"
    assert "WWW-Authenticate" not in res.headers


def test_unauthenticated_caller_is_invalid_client_rfc7662_2_1() -> None:
    res = _app().post(INTROSPECT, {"token": "x"}, status=401)
    assert res.json["error"] == "invalid_client"
    assert res.headers["WWW-Authenticate"].startswith("Basic ")


def test_missing_token_is_invalid_request_rfc7662_2_1() -> None:
    res = _app().post(INTROSPECT, {}, headers=basic("svc"), status=400)
    assert res.json["error"] == "invalid_request"


def test_bad_input_rfc7662_2_1() -> None:
    app = _app()
    assert app.get(INTROSPECT, status=405).headers["Allow"] == "POST"
    res = app.post(INTROSPECT, [("token", "a"), ("token", "b")], headers=basic("svc"), status=400)
    assert res.json["error"] == "invalid_request"
    res = app.post_json(INTROSPECT, {"token": "a"}, headers=basic("svc"), status=400)
    assert res.json["error"] == "invalid_request"


def test_jwt_response_rfc9701_4() -> None:
    app = _app()
    token = _cc(app)["access_token"]
    res = app.post(
        INTROSPECT,
        {"token": token},
        headers={**basic("rs"), "Accept": "application/token-introspection+jwt"},
    )
    assert res.content_type == "application/token-introspection+jwt"
    assert res.headers["Cache-Control"] == "no-store"
    header_b64, payload_b64, _ = res.text.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    assert header["typ"] == "token-introspection+jwt"
    assert payload["aud"] == "rs"
    assert payload["token_introspection"]["active"] is True


def test_introspection_is_advertised_rfc8414_2() -> None:
    doc = _app().get("/.well-known/oauth-authorization-server").json
    assert doc["introspection_endpoint"] == "https://id.example/oauth/introspect"
    assert "none" not in doc["introspection_endpoint_auth_methods_supported"]
    assert doc["introspection_signing_alg_values_supported"][0] == "ES256"


def test_jwt_response_uses_the_clients_registered_algorithm_rfc9701_6() -> None:
    """A client registered with ``introspection_signed_response_alg`` gets its responses
    signed with that algorithm; metadata lists every algorithm the server signs with."""
    from dataclasses import replace

    from asrv_support import CLIENTS, HostClients

    class RSAIntrospector(HostClients):
        def load_client(self, client_id: str) -> Any:
            if client_id == "rs":
                return replace(CLIENTS["rs"], introspection_signed_response_alg="RS256")
            return super().load_client(client_id)

    app = as_app(SETTINGS, set_attesto_client_store=RSAIntrospector())
    token = _cc(app)["access_token"]
    res = app.post(
        INTROSPECT,
        {"token": token},
        headers={**basic("rs"), "Accept": "application/token-introspection+jwt"},
    )
    header = json.loads(base64.urlsafe_b64decode(res.text.split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["introspection_signing_alg_values_supported"][0] == "ES256"
    assert "RS256" in doc["introspection_signing_alg_values_supported"]
