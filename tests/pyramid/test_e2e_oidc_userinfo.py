"""End to end: the UserInfo endpoint (OpenID Connect Core 1.0 §5.3) with Bearer (RFC 6750)
and DPoP (RFC 9449 §7) tokens, and the host's claims in ID tokens (§2, §5.4)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import pytest
from asrv_support import ISSUER, Claims, DPoPKey, as_app, basic, stores
from webtest import TestApp

from pyramid_attesto.core.stores import AuthorizationCode
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter
from pyramid_attesto.runtime import get_attesto

USERINFO = "/oauth/userinfo"
URL = ISSUER + USERINFO
TOKEN = "/oauth/token"


@pytest.fixture
def app() -> TestApp:
    return as_app(
        {"attesto.grant_types_supported": "authorization_code refresh_token"},
        set_attesto_claims_provider=Claims(),
    )


def _tokens(app: TestApp, scope: tuple[str, ...], **headers: str) -> dict[str, Any]:
    code = secrets.token_urlsafe(32)
    stores(app).codes.put(
        code,
        AuthorizationCode(
            client_id="web",
            subject="alice",
            redirect_uri="https://app.example/cb",
            scope=scope,
            expires_at=int(time.time()) + 60,
        ),
    )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "https://app.example/cb",
    }
    res = app.post(TOKEN, form, headers={**basic("web"), **headers}, status=200)
    return dict(res.json)


def _ath(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


def test_userinfo_with_a_bearer_token_oidc_core_5_3(app: TestApp) -> None:
    token = _tokens(app, ("openid", "profile"))["access_token"]
    res = app.get(USERINFO, headers={"Authorization": f"Bearer {token}"}, status=200)
    assert res.json == {"sub": "alice", "name": "Alice"}  # the host's forged sub is ignored
    assert res.headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in res.headers
    res = app.post(USERINFO, headers={"Authorization": f"Bearer {token}"}, status=200)
    assert res.json["sub"] == "alice"


def test_claims_follow_the_scopes_oidc_core_5_4(app: TestApp) -> None:
    token = _tokens(app, ("openid", "email"))["access_token"]
    res = app.get(USERINFO, headers={"Authorization": f"Bearer {token}"})
    assert res.json == {"sub": "alice", "email": "alice@example.com"}


def test_id_token_carries_host_claims_but_not_forged_ones_oidc_core_2(app: TestApp) -> None:
    id_token = _tokens(app, ("openid", "profile"))["id_token"]
    payload = id_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["name"] == "Alice"
    assert claims["iss"] == ISSUER


def test_no_credentials_is_a_challenge_without_error_rfc6750_3_1(app: TestApp) -> None:
    res = app.get(USERINFO, status=401)
    challenge = res.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert "error=" not in challenge
    assert "DPoP algs=" in challenge


def test_token_without_openid_is_insufficient_scope_rfc6750_3_1(app: TestApp) -> None:
    token = _tokens(app, ("read",))["access_token"]
    res = app.get(USERINFO, headers={"Authorization": f"Bearer {token}"}, status=403)
    assert 'error="insufficient_scope"' in res.headers["WWW-Authenticate"]
    assert res.json["error"] == "insufficient_scope"


def test_token_for_another_audience_is_invalid_token_d11(app: TestApp) -> None:
    runtime = get_attesto(app.app.registry)
    minter = AccessTokenMinter(runtime.keystore, issuer=ISSUER, clock=runtime.clock)
    token = minter.mint(
        AccessTokenClaims(
            subject="alice", client_id="web", audience="https://api.example", scopes=("openid",)
        )
    ).token
    res = app.get(USERINFO, headers={"Authorization": f"Bearer {token}"}, status=401)
    assert 'error="invalid_token"' in res.headers["WWW-Authenticate"]


def test_client_token_has_no_userinfo_d10(app: TestApp) -> None:
    runtime = get_attesto(app.app.registry)
    minter = AccessTokenMinter(runtime.keystore, issuer=ISSUER, clock=runtime.clock)
    token = minter.mint(
        AccessTokenClaims(
            subject="svc",
            client_id="svc",
            audience=ISSUER,
            scopes=("openid",),
            principal_kind="client",
        )
    ).token
    res = app.get(USERINFO, headers={"Authorization": f"Bearer {token}"}, status=401)
    assert res.json["error"] == "invalid_token"


def test_garbage_token_is_invalid_token_rfc6750_3_1(app: TestApp) -> None:
    res = app.get(USERINFO, headers={"Authorization": "Bearer abc.def.ghi"}, status=401)
    assert res.json["error"] == "invalid_token"
    res = app.get(USERINFO, headers={"Authorization": "Bearer a b"}, status=400)
    assert res.json["error"] == "invalid_request"


def test_dpop_bound_token_at_userinfo_rfc9449_7(app: TestApp) -> None:
    key = DPoPKey()
    token = _tokens(app, ("openid", "profile"), DPoP=key.proof())["access_token"]
    proof = key.proof(htu=URL, htm="GET", ath=_ath(token))
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    assert app.get(USERINFO, headers=headers, status=200).json["sub"] == "alice"
    # The same proof again is a replay (RFC 9449 §11.1).
    res = app.get(USERINFO, headers=headers, status=401)
    assert res.headers["WWW-Authenticate"].startswith("DPoP ")
    # A DPoP-bound token presented as Bearer is refused (RFC 9449 §7.2).
    res = app.get(USERINFO, headers={"Authorization": f"Bearer {token}"}, status=401)
    assert res.json["error"] == "invalid_token"


def test_wrong_method_and_plain_http(app: TestApp) -> None:
    assert app.delete(USERINFO, status=405).headers["Allow"] == "GET, POST"
    res = app.get(USERINFO, extra_environ={"wsgi.url_scheme": "http"}, status=400)
    assert res.json["error_description"] == "this endpoint is served over https only"


def test_userinfo_is_advertised_only_with_a_claims_provider_rfc8414_2(app: TestApp) -> None:
    doc = app.get("/.well-known/openid-configuration").json
    assert doc["userinfo_endpoint"] == URL
    plain = as_app()
    assert "userinfo_endpoint" not in plain.get("/.well-known/openid-configuration").json
    plain.get(USERINFO, status=404)
