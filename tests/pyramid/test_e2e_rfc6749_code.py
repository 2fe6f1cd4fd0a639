"""End to end: the authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636), DPoP
binding (RFC 9449 §10), single use with reuse detection (RFC 6749 §4.1.2, RFC 9700 §4.5), the
refresh token it produces (RFC 6749 §6, RFC 9700 §4.14) and the ID token (OIDC Core §3.1.3).

Codes are put into the store as the authorization endpoint would."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import pytest
from asrv_support import (
    ISSUER,
    DPoPKey,
    HostPrincipals,
    as_app,
    basic,
    events,
    stores,
    verify_access_token,
)
from webtest import TestApp

from pyramid_attesto.core.stores import AuthorizationCode

TOKEN = "/oauth/token"
GRANTS = {"attesto.grant_types_supported": "authorization_code refresh_token client_credentials"}
VERIFIER = "v" * 43 + "-._~0123"
PUB_CB = "http://127.0.0.1/cb"
WEB_CB = "https://app.example/cb"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _app(**settings: str) -> TestApp:
    return as_app({**GRANTS, **settings})


def _code(app: TestApp, client_id: str = "pub", **fields: Any) -> str:
    code = secrets.token_urlsafe(32)
    entry: dict[str, Any] = {
        "client_id": client_id,
        "subject": "alice",
        "redirect_uri": PUB_CB if client_id == "pub" else WEB_CB,
        "scope": ("read",),
        "expires_at": int(time.time()) + 60,
        "code_challenge": _challenge(VERIFIER),
        **fields,
    }
    stores(app).codes.put(code, AuthorizationCode(**entry))
    return code


def _redeem(client_id: str = "pub", code: str = "", **extra: str) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": PUB_CB if client_id == "pub" else WEB_CB,
        "code_verifier": VERIFIER,
        **extra,
    }
    if client_id == "pub":
        form["client_id"] = "pub"
    return {k: v for k, v in form.items() if v != "-"}


def _payload(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def test_public_client_redeems_a_code_with_pkce_rfc7636_4_6() -> None:
    app = _app()
    seen = events(app)
    res = app.post(TOKEN, _redeem(code=_code(app)), status=200)
    assert res.headers["Cache-Control"] == "no-store"
    body = res.json
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read"
    assert body["refresh_token"]  # registered for refresh_token, no offline_access needed
    assert "id_token" not in body
    token = verify_access_token(app, body["access_token"])
    assert (token.subject, token.client_id, token.principal_kind) == ("alice", "pub", "user")
    assert [e.name for e in seen] == ["token_issued"]
    assert body["refresh_token"] not in repr(seen)


def test_confidential_client_with_openid_gets_an_id_token_oidc_core_3_1_3_3() -> None:
    app = _app()
    code = _code(app, "web", scope=("openid", "read"), nonce="n-0S6", auth_time=1700000000)
    res = app.post(TOKEN, _redeem("web", code), headers=basic("web"), status=200)
    claims = _payload(res.json["id_token"])
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "web"
    assert claims["sub"] == "alice"
    assert claims["nonce"] == "n-0S6"
    assert claims["auth_time"] == 1700000000
    assert "at_hash" in claims
    header = json.loads(base64.urlsafe_b64decode(res.json["id_token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256"


def test_code_is_single_use_and_reuse_revokes_rfc6749_4_1_2() -> None:
    app = _app()
    seen = events(app)
    code = _code(app)
    first = app.post(TOKEN, _redeem(code=code), status=200).json
    again = app.post(TOKEN, _redeem(code=code), status=400)
    assert again.json == {
        "error": "invalid_grant",
        "error_description": "the authorization code was already used",
    }
    assert again.headers["x-tm"] == "commit"
    assert "code_reuse_detected" in [e.name for e in seen]
    # RFC 9700 §4.5: the refresh family is revoked and the access token denied.
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    res = app.post(TOKEN, {**refresh, "client_id": "pub"}, status=400)
    assert res.json["error"] == "invalid_grant"
    jti = verify_access_token(app, first["access_token"]).jti
    assert stores(app).revoked_access_tokens.is_revoked(jti)


def test_unknown_code_is_invalid_grant_rfc6749_5_2() -> None:
    res = _app().post(TOKEN, _redeem(code="nope"), status=400)
    assert res.json["error"] == "invalid_grant"


def test_expired_code_is_invalid_grant_rfc6749_4_1_2() -> None:
    app = _app()
    code = _code(app, expires_at=int(time.time()) - 1)
    assert app.post(TOKEN, _redeem(code=code), status=400).json["error"] == "invalid_grant"


def test_missing_code_is_invalid_request_rfc6749_4_1_3() -> None:
    res = _app().post(TOKEN, _redeem(code="-"), status=400)
    assert res.json == {
        "error": "invalid_request",
        "error_description": "the code parameter is required",
    }


def test_code_of_another_client_is_invalid_grant_rfc6749_4_1_3() -> None:
    app = _app()
    code = _code(app, "web", redirect_uri=PUB_CB)
    res = app.post(TOKEN, _redeem(code=code), status=400)
    assert res.json["error_description"] == "the code was issued to another client"


@pytest.mark.parametrize(
    ("redirect_uri", "description"),
    [
        ("http://127.0.0.1/other", "redirect_uri does not match"),
        ("-", "redirect_uri is required"),
        ("http://127.0.0.1/cb/", "redirect_uri does not match"),
    ],
)
def test_redirect_uri_must_be_identical_rfc6749_4_1_3(redirect_uri: str, description: str) -> None:
    app = _app()
    res = app.post(TOKEN, _redeem(code=_code(app), redirect_uri=redirect_uri), status=400)
    assert res.json == {"error": "invalid_grant", "error_description": description}


@pytest.mark.parametrize(
    ("verifier", "reason"),
    [
        ("-", "code_verifier is required"),
        ("w" * 43, "code_verifier does not match the challenge"),
        ("short", "code_verifier is malformed"),
    ],
)
def test_pkce_failures_are_invalid_grant_rfc7636_4_6(verifier: str, reason: str) -> None:
    app = _app()
    res = app.post(TOKEN, _redeem(code=_code(app), code_verifier=verifier), status=400)
    assert res.json == {"error": "invalid_grant", "error_description": reason}


def test_verifier_for_a_code_without_challenge_is_a_downgrade_rfc7636_4_6() -> None:
    app = _app()
    code = _code(app, "web", code_challenge=None)
    res = app.post(TOKEN, _redeem("web", code), headers=basic("web"), status=400)
    assert res.json["error"] == "invalid_grant"


def test_a_failed_redemption_burns_the_code_without_revoking_rfc9700_4_5() -> None:
    app = _app()
    code = _code(app)
    app.post(TOKEN, _redeem(code=code, code_verifier="w" * 43), status=400)
    res = app.post(TOKEN, _redeem(code=code), status=400)
    assert res.json["error"] == "invalid_grant"


def test_inactive_principal_is_invalid_grant_d12() -> None:
    app = _app()
    HostPrincipals.disabled.add("mallory")
    try:
        res = app.post(TOKEN, _redeem(code=_code(app, subject="mallory")), status=400)
    finally:
        HostPrincipals.disabled.discard("mallory")
    assert res.json["error"] == "invalid_grant"


def test_code_bound_to_a_dpop_key_needs_that_key_rfc9449_10() -> None:
    app = _app()
    key = DPoPKey()
    res = app.post(TOKEN, _redeem(code=_code(app, dpop_jkt=key.jkt)), status=400)
    assert res.json["error"] == "invalid_dpop_proof"
    other = DPoPKey().proof()
    res = app.post(
        TOKEN, _redeem(code=_code(app, dpop_jkt=key.jkt)), headers={"DPoP": other}, status=400
    )
    assert res.json["error_description"] == "the DPoP key is not the key the grant is bound to"
    ok = app.post(TOKEN, _redeem(code=_code(app, dpop_jkt=key.jkt)), headers={"DPoP": key.proof()})
    assert ok.json["token_type"] == "DPoP"
    assert verify_access_token(app, ok.json["access_token"]).cnf == {"jkt": key.jkt}


def test_code_resource_is_the_audience_rfc8707_2_2() -> None:
    app = _app()
    code = _code(app, resource=("https://api.example/mcp",))
    res = app.post(TOKEN, _redeem(code=code), status=200)
    token = verify_access_token(app, res.json["access_token"], "https://api.example/mcp")
    assert token.audience == ("https://api.example/mcp",)
    code = _code(app, resource=("https://api.example/mcp",))
    res = app.post(TOKEN, _redeem(code=code, resource="https://other.example"), status=400)
    assert res.json["error"] == "invalid_target"


# -- refresh (RFC 6749 §6) -----------------------------------------------------------------


def _tokens(app: TestApp, **fields: Any) -> dict[str, Any]:
    return dict(app.post(TOKEN, _redeem(code=_code(app, **fields)), status=200).json)


def _refresh(token: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, "client_id": "pub", **extra}


def test_refresh_rotates_rfc9700_4_14_2() -> None:
    app = _app()
    seen = events(app)
    first = _tokens(app, scope=("read", "write"))
    res = app.post(TOKEN, _refresh(first["refresh_token"]), status=200)
    assert res.headers["Cache-Control"] == "no-store"
    assert res.json["refresh_token"] != first["refresh_token"]
    assert res.json["scope"] == "read write"
    assert seen[-1].name == "refresh_rotated"
    # The new token works; the old one is a reuse that revokes the family.
    second = app.post(TOKEN, _refresh(res.json["refresh_token"]), status=200).json
    reuse = app.post(TOKEN, _refresh(first["refresh_token"]), status=400)
    assert reuse.json["error"] == "invalid_grant"
    assert [e.name for e in seen[-2:]] == ["refresh_reuse_detected", "token_denied"]
    dead = app.post(TOKEN, _refresh(second["refresh_token"]), status=400)
    assert dead.json["error"] == "invalid_grant"


def test_refresh_narrows_scope_rfc6749_6() -> None:
    app = _app()
    first = _tokens(app, scope=("read", "write"))
    res = app.post(TOKEN, _refresh(first["refresh_token"], scope="read"), status=200)
    assert res.json["scope"] == "read"
    # The refresh token keeps the original scope (RFC 6749 §6).
    res = app.post(TOKEN, _refresh(res.json["refresh_token"]), status=200)
    assert res.json["scope"] == "read write"


def test_refresh_cannot_broaden_scope_rfc6749_6() -> None:
    app = _app()
    first = _tokens(app)
    res = app.post(TOKEN, _refresh(first["refresh_token"], scope="read admin"), status=400)
    assert res.json["error"] == "invalid_scope"
    # A refused request does not burn the token.
    app.post(TOKEN, _refresh(first["refresh_token"]), status=200)


def test_refresh_of_another_client_is_invalid_grant_rfc6749_6() -> None:
    app = _app()
    first = _tokens(app)
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    res = app.post(TOKEN, form, headers=basic("web"), status=400)
    assert res.json["error"] == "invalid_grant"
    app.post(TOKEN, _refresh(first["refresh_token"]), status=200)


def test_unknown_refresh_token_is_invalid_grant_rfc6749_5_2() -> None:
    res = _app().post(TOKEN, _refresh("nope"), status=400)
    assert res.json["error"] == "invalid_grant"


def test_missing_refresh_token_is_invalid_request_rfc6749_6() -> None:
    res = _app().post(TOKEN, {"grant_type": "refresh_token", "client_id": "pub"}, status=400)
    assert res.json["error"] == "invalid_request"


def test_public_client_refresh_is_bound_to_its_dpop_key_rfc9449_5() -> None:
    app = _app()
    key = DPoPKey()
    first = app.post(TOKEN, _redeem(code=_code(app)), headers={"DPoP": key.proof()}).json
    assert first["token_type"] == "DPoP"
    res = app.post(TOKEN, _refresh(first["refresh_token"]), status=400)
    assert res.json["error"] == "invalid_dpop_proof"
    res = app.post(
        TOKEN, _refresh(first["refresh_token"]), headers={"DPoP": DPoPKey().proof()}, status=400
    )
    assert res.json["error"] == "invalid_dpop_proof"
    ok = app.post(TOKEN, _refresh(first["refresh_token"]), headers={"DPoP": key.proof()})
    assert ok.json["token_type"] == "DPoP"


def test_refresh_resource_narrowing_rfc8707_2_2() -> None:
    app = _app()
    first = _tokens(app, resource=("https://api.example/a", "https://api.example/b"))
    res = app.post(
        TOKEN, _refresh(first["refresh_token"], resource="https://api.example/b"), status=200
    )
    token = verify_access_token(app, res.json["access_token"], "https://api.example/b")
    assert token.audience == ("https://api.example/b",)
    res = app.post(
        TOKEN, _refresh(res.json["refresh_token"], resource="https://c.example"), status=400
    )
    assert res.json["error"] == "invalid_target"


def test_refresh_grant_disabled_is_unsupported_grant_type_rfc6749_5_2() -> None:
    app = as_app({"attesto.grant_types_supported": "authorization_code"})
    first = app.post(TOKEN, _redeem(code=_code(app)), status=200).json
    assert "refresh_token" not in first
    res = app.post(TOKEN, _refresh("whatever"), status=400)
    assert res.json["error"] == "unsupported_grant_type"


def test_grace_window_returns_the_same_successor_rfc9700_4_14_2() -> None:
    app = as_app(
        {
            **GRANTS,
            "attesto.refresh_grace_ttl": "30",
            "attesto.refresh_successor_secret": "s" * 40,
        }
    )
    first = _tokens(app)
    one = app.post(TOKEN, _refresh(first["refresh_token"]), status=200).json
    retry = app.post(TOKEN, _refresh(first["refresh_token"]), status=200).json
    assert retry["refresh_token"] == one["refresh_token"]
    assert retry["access_token"] != one["access_token"]


def test_grace_window_needs_the_successor_secret_d12() -> None:
    from pyramid.exceptions import ConfigurationExecutionError

    with pytest.raises(ConfigurationExecutionError, match="refresh_successor_secret"):
        as_app({**GRANTS, "attesto.refresh_grace_ttl": "30"})
