"""End to end: pushed authorization requests (RFC 9126) at ``POST /oauth/par``, then the
authorization endpoint with the ``request_uri``, with DPoP binding (RFC 9449 §10.1)."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asrv_support import ISSUER, Consent, DPoPKey, as_app, basic, stores
from webtest import TestApp

from pyramid_attesto.core.stores import PushedRequest

PAR = "/oauth/par"
AUTHORIZE = "/oauth/authorize"
TOKEN = "/oauth/token"
VERIFIER = "p" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
USER = {"X-Test-User": "alice"}


def _app(**settings: str) -> TestApp:
    return as_app(settings, set_attesto_consent_policy=Consent())


@pytest.fixture
def app() -> TestApp:
    return _app()


def _push_form(**overrides: str) -> dict[str, str]:
    form = {
        "response_type": "code",
        "client_id": "pub",
        "redirect_uri": "http://127.0.0.1/cb",
        "scope": "read",
        "state": "s1",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in form.items() if v != "-"}


def _authorize(app: TestApp, request_uri: str, client_id: str = "pub", **kw: Any) -> Any:
    return app.get(AUTHORIZE, {"client_id": client_id, "request_uri": request_uri}, **kw)


def _code(res: Any) -> str:
    assert res.status_int == 302
    params = parse_qs(urlsplit(res.headers["Location"]).query)
    assert params["iss"] == [ISSUER]
    assert params["state"] == ["s1"]
    return params["code"][0]


def _redeem(app: TestApp, code: str, **kw: Any) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1/cb",
        "code_verifier": VERIFIER,
        "client_id": "pub",
    }
    return app.post(TOKEN, form, **kw)


def test_push_then_authorize_rfc9126_2_2(app: TestApp) -> None:
    res = app.post(PAR, _push_form(), status=201)
    assert res.headers["Cache-Control"] == "no-store"
    body = res.json
    assert set(body) == {"request_uri", "expires_in"}
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert body["expires_in"] == 90
    code = _code(_authorize(app, body["request_uri"], headers=USER, status=302))
    assert _redeem(app, code, status=200).json["token_type"] == "Bearer"
    # Single use at code issuance (RFC 9126 §4).
    again = _authorize(app, body["request_uri"], headers=USER, status=400)
    assert "invalid_request_uri" in again.text


def test_confidential_client_authenticates_at_par_rfc9126_2_1(app: TestApp) -> None:
    form = _push_form(client_id="-", redirect_uri="https://app.example/cb")
    res = app.post(PAR, form, headers=basic("web"), status=201)
    redirect = _authorize(app, res.json["request_uri"], "web", headers=USER, status=302)
    assert redirect.headers["Location"].startswith("https://app.example/cb?code=")
    bad = app.post(PAR, form, headers=basic("web", "wrong"), status=401)
    assert bad.json["error"] == "invalid_client"


def test_request_uri_in_the_body_is_refused_rfc9126_2_1(app: TestApp) -> None:
    form = _push_form(request_uri="urn:ietf:params:oauth:request_uri:abcdefghijklmnopq")
    res = app.post(PAR, form, status=400)
    assert res.json["error"] == "invalid_request"
    assert res.headers["x-tm"] == "commit"


def test_request_uri_of_another_client_is_invalid_request_uri_rfc9126_4(app: TestApp) -> None:
    request_uri = app.post(PAR, _push_form(), status=201).json["request_uri"]
    res = _authorize(app, request_uri, "web", headers=USER, status=400)
    assert "invalid_request_uri" in res.text


def test_expired_request_uri_is_invalid_request_uri_rfc9126_4(app: TestApp) -> None:
    request_uri = "urn:ietf:params:oauth:request_uri:" + "e" * 32
    stores(app).requests.put(
        request_uri,
        PushedRequest(client_id="pub", params={"v": 1}, expires_at=int(time.time()) - 1),
    )
    res = _authorize(app, request_uri, headers=USER, status=400)
    assert "invalid_request_uri" in res.text


def test_url_request_uri_is_not_fetched_rfc9101_5_2(app: TestApp) -> None:
    res = _authorize(app, "https://evil.example/req", headers=USER, status=400)
    assert "request_uri_not_supported" in res.text


def test_validation_errors_are_json_at_par_rfc9126_2_3(app: TestApp) -> None:
    res = app.post(PAR, _push_form(redirect_uri="https://evil.example/cb"), status=400)
    assert res.json["error"] == "invalid_request"
    res = app.post(PAR, _push_form(scope="admin"), status=400)
    assert res.json["error"] == "invalid_scope"
    res = app.post(PAR, _push_form(code_challenge="-", code_challenge_method="-"), status=400)
    assert res.json["error"] == "invalid_request"


def test_required_par_refuses_inline_requests_rfc9126_5() -> None:
    app = _app(**{"attesto.require_pushed_authorization_requests": "true"})
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["require_pushed_authorization_requests"] is True
    inline = dict(_push_form())
    res = app.get(AUTHORIZE, inline, headers=USER, status=400)
    assert "invalid_request" in res.text
    request_uri = app.post(PAR, _push_form(), status=201).json["request_uri"]
    _code(_authorize(app, request_uri, headers=USER, status=302))


def test_dpop_proof_at_par_binds_the_code_rfc9449_10_1(app: TestApp) -> None:
    key = DPoPKey()
    proof = key.proof(htu=ISSUER + PAR)
    request_uri = app.post(PAR, _push_form(), headers={"DPoP": proof}, status=201).json[
        "request_uri"
    ]
    code = _code(_authorize(app, request_uri, headers=USER, status=302))
    assert _redeem(app, code, status=400).json["error"] == "invalid_dpop_proof"
    request_uri = app.post(
        PAR, _push_form(), headers={"DPoP": key.proof(htu=ISSUER + PAR)}, status=201
    ).json["request_uri"]
    code = _code(_authorize(app, request_uri, headers=USER, status=302))
    assert _redeem(app, code, headers={"DPoP": key.proof()}).json["token_type"] == "DPoP"


def test_dpop_jkt_must_match_the_proof_rfc9449_10_1(app: TestApp) -> None:
    key, other = DPoPKey(), DPoPKey()
    res = app.post(
        PAR,
        _push_form(dpop_jkt=other.jkt),
        headers={"DPoP": key.proof(htu=ISSUER + PAR)},
        status=400,
    )
    assert res.json["error"] == "invalid_dpop_proof"


def test_par_dpop_proof_for_another_url_is_refused_rfc9449_4_3(app: TestApp) -> None:
    res = app.post(PAR, _push_form(), headers={"DPoP": DPoPKey().proof()}, status=400)
    assert res.json["error"] == "invalid_dpop_proof"


def test_par_nonce_flow_rfc9449_8() -> None:
    app = _app(**{"attesto.dpop.nonce": "hmac", "attesto.dpop.nonce_secret": "n" * 32})
    key = DPoPKey()
    first = app.post(PAR, _push_form(), headers={"DPoP": key.proof(htu=ISSUER + PAR)}, status=400)
    assert first.json["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    proof = key.proof(htu=ISSUER + PAR, nonce=nonce)
    ok = app.post(PAR, _push_form(), headers={"DPoP": proof}, status=201)
    assert ok.headers["DPoP-Nonce"]


def test_bad_input_at_par(app: TestApp) -> None:
    assert app.get(PAR, status=405).headers["Allow"] == "POST"
    res = app.post_json(PAR, _push_form(), status=400)
    assert res.json["error"] == "invalid_request"
    dup = [*_push_form().items(), ("scope", "write")]
    assert app.post(PAR, dup, status=400).json["error"] == "invalid_request"
    res = app.post(PAR, {}, status=401)
    assert res.json["error"] == "invalid_client"
    plain = app.post(PAR, _push_form(), extra_environ={"wsgi.url_scheme": "http"}, status=400)
    assert plain.json["error_description"] == "this endpoint is served over https only"
