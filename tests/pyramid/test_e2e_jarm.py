"""End to end: JWT Secured Authorization Response Mode (JARM, OpenID final 2022) and the
Form Post Response Mode at the authorization endpoint: ``jwt``, ``query.jwt``,
``fragment.jwt``, ``form_post.jwt`` and ``form_post``, success and errors. Every JARM
response is verified with joserfc against the published JWK Set (``/.well-known/jwks.json``),
never with our own verifier."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asrv_support import CLIENTS, ISSUER, Consent, as_app
from joserfc import jwt
from joserfc.jwk import KeySet
from pyramid.exceptions import ConfigurationExecutionError
from webtest import TestApp

from pyramid_attesto.core.clients import Client

AUTHORIZE = "/oauth/authorize"
PAR = "/oauth/par"
TOKEN = "/oauth/token"
VERIFIER = "j" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
USER = {"X-Test-User": "alice"}
ALL_MODES = "query fragment form_post jwt query.jwt fragment.jwt form_post.jwt"

CLIENTS["jarm-rs256"] = Client(
    client_id="jarm-rs256",
    token_endpoint_auth_method="none",
    application_type="native",
    redirect_uris=("http://127.0.0.1/cb",),
    grant_types=("authorization_code",),
    scope="read",
    authorization_signed_response_alg="RS256",
)
CLIENTS["jarm-ps256"] = Client(
    client_id="jarm-ps256",
    token_endpoint_auth_method="none",
    application_type="native",
    redirect_uris=("http://127.0.0.1/cb",),
    grant_types=("authorization_code",),
    scope="read",
    authorization_signed_response_alg="PS256",
)


def _app(**settings: str) -> TestApp:
    return as_app(
        {f"attesto.{k.replace('__', '.')}": v for k, v in settings.items()},
        set_attesto_consent_policy=Consent(),
    )


@pytest.fixture(scope="module")
def app() -> TestApp:
    return _app(response_modes=ALL_MODES)


def _query(**overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": "pub",
        "redirect_uri": "http://127.0.0.1/cb",
        "scope": "read",
        "state": "st8",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in params.items() if v != "-"}


def _verify(app: TestApp, response: str, algs: tuple[str, ...] = ("ES256",)) -> dict[str, Any]:
    """The claims of a JARM response, checked with joserfc and the published JWK Set."""
    keys = KeySet.import_key_set(app.get("/.well-known/jwks.json").json)
    token = jwt.decode(response, keys, algorithms=list(algs))
    assert token.header["typ"] == "JWT"
    assert token.header["alg"] in algs
    claims = dict(token.claims)
    assert claims.pop("iss") == ISSUER
    assert claims.pop("aud") in ("pub", "jarm-rs256", "web")
    exp = claims.pop("exp")
    assert time.time() < exp <= time.time() + 300  # JARM §2.1: short-lived
    return claims


def _query_response(res: Any) -> str:
    assert res.status_int in (302, 303)
    parts = urlsplit(res.headers["Location"])
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "http",
        "127.0.0.1",
        "/cb",
        "",
    )
    params = parse_qs(parts.query)
    assert list(params) == ["response"]  # JARM §2.3.1: the one parameter
    return params["response"][0]


def _form_fields(res: Any) -> tuple[str, dict[str, str]]:
    assert res.status_int == 200
    assert res.content_type == "text/html"
    action = re.search(r'<form method="post" action="([^"]*)">', res.text)
    assert action is not None
    fields = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', res.text)
    return html.unescape(action.group(1)), {html.unescape(k): html.unescape(v) for k, v in fields}


def _redeem(app: TestApp, code: str, client_id: str = "pub") -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1/cb",
        "code_verifier": VERIFIER,
        "client_id": client_id,
    }
    return app.post(TOKEN, form, status=200)


# -- success in every mode ----------------------------------------------------------------


def test_query_jwt_carries_the_signed_code_jarm_2_3_1(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(response_mode="query.jwt"), headers=USER, status=302)
    claims = _verify(app, _query_response(res))
    assert set(claims) == {"code", "state"}
    assert claims["state"] == "st8"
    assert _redeem(app, claims["code"]).json["token_type"] == "Bearer"


def test_jwt_is_query_jwt_for_the_code_flow_jarm_2_3_4(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(response_mode="jwt"), headers=USER, status=302)
    assert set(_verify(app, _query_response(res))) == {"code", "state"}


def test_post_to_authorize_redirects_with_303_d15(app: TestApp) -> None:
    res = app.post(AUTHORIZE, _query(response_mode="jwt"), headers=USER, status=303)
    assert _verify(app, _query_response(res))["state"] == "st8"


def test_fragment_jwt_carries_the_response_in_the_fragment_jarm_2_3_2(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(response_mode="fragment.jwt"), headers=USER, status=302)
    parts = urlsplit(res.headers["Location"])
    assert (parts.netloc, parts.path, parts.query) == ("127.0.0.1", "/cb", "")
    params = parse_qs(parts.fragment)
    assert list(params) == ["response"]
    assert set(_verify(app, params["response"][0])) == {"code", "state"}


def _strict_page(res: Any) -> str:
    """The D15 headers and a CSP under which only the nonce'd script runs; the nonce."""
    csp = res.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    nonce = re.fullmatch(r"'nonce-([A-Za-z0-9_-]{43})'", directives["script-src"])
    assert nonce is not None
    assert directives == {
        "default-src": "'none'",
        "script-src": f"'nonce-{nonce.group(1)}'",
        "form-action": "http://127.0.0.1",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
    }
    assert res.headers["X-Frame-Options"] == "DENY"
    assert res.headers["Referrer-Policy"] == "no-referrer"
    assert res.headers["Cache-Control"] == "no-store"
    # Every script carries the nonce; nothing else is loaded.
    scripts = re.findall(r"<script([^>]*)>", res.text)
    assert scripts == [f' nonce="{nonce.group(1)}"']
    assert not re.search(r"\b(src|href|style|on[a-z]+)=", res.text)
    return nonce.group(1)


def test_form_post_jwt_is_a_self_submitting_page_jarm_2_3_3_d15(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(response_mode="form_post.jwt"), headers=USER, status=200)
    _strict_page(res)
    action, fields = _form_fields(res)
    assert action == "http://127.0.0.1/cb"
    assert list(fields) == ["response"]
    claims = _verify(app, fields["response"])
    assert _redeem(app, claims["code"]).status_int == 200


def test_form_post_posts_code_state_and_iss_form_post_2_rfc9207(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(response_mode="form_post"), headers=USER, status=200)
    nonce = _strict_page(res)
    assert f'<script nonce="{nonce}">document.forms[0].submit();</script>' in res.text
    assert "<noscript>" in res.text  # without scripts the user presses the button
    action, fields = _form_fields(res)
    assert action == "http://127.0.0.1/cb"
    assert set(fields) == {"code", "state", "iss"}
    assert (fields["state"], fields["iss"]) == ("st8", ISSUER)
    assert _redeem(app, fields["code"]).status_int == 200
    # A fresh nonce on every page.
    again = app.get(AUTHORIZE, _query(response_mode="form_post"), headers=USER, status=200)
    assert _strict_page(again) != nonce


def test_form_post_escapes_the_state_d15(app: TestApp) -> None:
    state = "\"><script>alert(1)</script>&'"
    res = app.get(AUTHORIZE, _query(response_mode="form_post", state=state), headers=USER)
    assert "<script>alert" not in res.text
    assert _form_fields(res)[1]["state"] == state


def test_client_signing_alg_is_used_jarm_3(app: TestApp) -> None:
    res = app.get(
        AUTHORIZE,
        _query(client_id="jarm-rs256", response_mode="query.jwt"),
        headers=USER,
        status=302,
    )
    response = _query_response(res)
    assert json.loads(base64.urlsafe_b64decode(response.split(".")[0] + "=="))["alg"] == "RS256"
    claims = _verify(app, response, ("RS256",))
    assert _redeem(app, claims["code"], "jarm-rs256").status_int == 200


def test_pushed_request_answers_in_its_jarm_mode_rfc9126_jarm(app: TestApp) -> None:
    from asrv_support import basic

    form = _query(client_id="web", redirect_uri="https://app.example/cb", response_mode="jwt")
    pushed = app.post(PAR, form, headers=basic("web"), status=201).json
    res = app.get(
        AUTHORIZE,
        {"client_id": "web", "request_uri": pushed["request_uri"]},
        headers=USER,
        status=302,
    )
    location = urlsplit(res.headers["Location"])
    assert location.netloc == "app.example"
    claims = _verify(app, parse_qs(location.query)["response"][0])
    assert set(claims) == {"code", "state"}


# -- errors -------------------------------------------------------------------------------


def test_denied_consent_is_a_signed_error_jarm_2_2(app: TestApp) -> None:
    res = app.get(
        AUTHORIZE,
        _query(response_mode="query.jwt"),
        headers={**USER, "X-Test-Consent": "deny"},
        status=302,
    )
    assert _verify(app, _query_response(res)) == {
        "error": "access_denied",
        "error_description": "the user denied the request",
        "state": "st8",
    }


def test_validation_error_is_a_signed_error_jarm_2_2(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(response_mode="jwt", scope="nope"), status=302)
    assert _verify(app, _query_response(res)) == {
        "error": "invalid_scope",
        "error_description": "the scope is unknown",
        "state": "st8",
    }


def test_form_post_jwt_error_is_a_signed_page_jarm_2_2(app: TestApp) -> None:
    res = app.get(
        AUTHORIZE,
        _query(response_mode="form_post.jwt", code_challenge="-", code_challenge_method="-"),
    )
    _strict_page(res)
    assert _verify(app, _form_fields(res)[1]["response"]) == {
        "error": "invalid_request",
        "error_description": "code_challenge is required",
        "state": "st8",
    }


def test_form_post_error_is_a_page_with_iss_rfc9207(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(response_mode="form_post", prompt="none"))
    _strict_page(res)
    assert _form_fields(res)[1] == {
        "error": "login_required",
        "error_description": "the user must log in",
        "state": "st8",
        "iss": ISSUER,
    }


def test_malformed_state_error_is_still_signed_but_not_echoed_jarm_2_2(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(response_mode="jwt", state="bad\u00e9"), status=302)
    assert _verify(app, _query_response(res)) == {
        "error": "invalid_request",
        "error_description": "state is malformed",
    }


def test_unknown_response_mode_is_a_plain_error_oauth_mrte_2_1(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(response_mode="teleport.jwt"), status=302)
    params = parse_qs(urlsplit(res.headers["Location"]).query)
    assert params == {
        "error": ["invalid_request"],
        "error_description": ["response_mode is unknown"],
        "state": ["st8"],
        "iss": [ISSUER],
    }


def test_unknown_client_is_never_redirected_even_with_jarm_rfc6749_4_1_2_1() -> None:
    app = _app()
    res = app.get(AUTHORIZE, _query(client_id="nobody", response_mode="jwt"), status=400)
    assert "Location" not in res.headers
    assert "<code>invalid_client</code>: the client is unknown" in res.text


def test_disabled_mode_is_refused_in_plain_query_rule6() -> None:
    app = _app(response_modes="query")
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["response_modes_supported"] == ["query"]
    assert "authorization_signing_alg_values_supported" not in doc
    res = app.get(AUTHORIZE, _query(response_mode="query.jwt"), status=302)
    assert parse_qs(urlsplit(res.headers["Location"]).query) == {
        "error": ["invalid_request"],
        "error_description": ["response_mode is not supported"],
        "state": ["st8"],
        "iss": [ISSUER],
    }


def test_fragment_modes_are_off_by_default_rule6() -> None:
    app = _app()
    res = app.get(AUTHORIZE, _query(response_mode="fragment.jwt"), status=302)
    assert parse_qs(urlsplit(res.headers["Location"]).query)["error_description"] == [
        "response_mode is not supported"
    ]


def test_client_alg_without_a_key_is_a_local_server_error_d24(app: TestApp) -> None:
    res = app.get(
        AUTHORIZE,
        _query(client_id="jarm-ps256", response_mode="jwt"),
        headers=USER,
        status=500,
    )
    assert "Location" not in res.headers
    assert "<code>server_error</code>" in res.text


# -- metadata and configuration (DESIGN.md rule 6, D24) -----------------------------------


def test_metadata_advertises_exactly_the_enforced_modes_and_algs_jarm_4(app: TestApp) -> None:
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["response_modes_supported"] == ALL_MODES.split()
    assert doc["authorization_signing_alg_values_supported"] == ["ES256", "RS256"]


def test_jarm_algorithms_setting_narrows_and_signs_with_them_d24() -> None:
    app = _app(jarm__algorithms="RS256")
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["authorization_signing_alg_values_supported"] == ["RS256"]
    res = app.get(AUTHORIZE, _query(response_mode="jwt"), headers=USER, status=302)
    _verify(app, _query_response(res), ("RS256",))


def test_jarm_algorithm_without_a_key_is_refused_at_startup_d24() -> None:
    with pytest.raises(ConfigurationExecutionError, match=r"attesto\.jarm\.algorithms: PS256"):
        _app(jarm__algorithms="PS256")


@pytest.mark.parametrize(
    ("modes", "message"),
    [
        ("query teleport", "unknown response mode teleport"),
        ("form_post jwt", "query is the code flow's default mode"),
    ],
)
def test_bad_response_modes_are_refused_at_startup(modes: str, message: str) -> None:
    with pytest.raises(ConfigurationExecutionError, match=message):
        _app(response_modes=modes)


# -- registration of authorization_signed_response_alg (JARM §3) -------------------------


def _registering_app() -> TestApp:
    return _app(registration__enabled="true", registration_store="memory")


REGISTRATION = {
    "redirect_uris": ["http://127.0.0.1/cb"],
    "token_endpoint_auth_method": "none",
    "application_type": "native",
    "scope": "read",
}


def test_registered_jarm_alg_is_echoed_and_used_jarm_3() -> None:
    app = _registering_app()
    body = {**REGISTRATION, "authorization_signed_response_alg": "RS256"}
    registered = app.post_json("/oauth/register", body, status=201).json
    assert registered["authorization_signed_response_alg"] == "RS256"
    res = app.get(
        AUTHORIZE,
        _query(client_id=registered["client_id"], response_mode="jwt"),
        headers=USER,
        status=302,
    )
    token = jwt.decode(
        _query_response(res),
        KeySet.import_key_set(app.get("/.well-known/jwks.json").json),
        algorithms=["RS256"],
    )
    assert token.claims["aud"] == registered["client_id"]


def test_registered_jarm_alg_must_be_one_we_sign_with_jarm_3() -> None:
    app = _registering_app()
    body = {**REGISTRATION, "authorization_signed_response_alg": "PS256"}
    res = app.post_json("/oauth/register", body, status=400)
    assert res.json == {
        "error": "invalid_client_metadata",
        "error_description": "authorization_signed_response_alg is not supported",
    }


# -- Client ID Metadata Documents name the algorithm the same way -------------------------

DOCUMENT = "https://connector.example/client.json"


class _Documents:
    def __init__(self, alg: str) -> None:
        self.alg = alg

    def fetch(self, url: str) -> Any:
        from pyramid_attesto.core.outbound import FetchedDocument

        document = {
            "client_id": DOCUMENT,
            "redirect_uris": ["https://connector.example/cb"],
            "token_endpoint_auth_method": "none",
            "authorization_signed_response_alg": self.alg,
        }
        return FetchedDocument(url=url, body=json.dumps(document).encode(), headers={})


def _document_app(alg: str) -> TestApp:
    return as_app(
        {"attesto.client_id_metadata.enabled": "true"},
        set_attesto_consent_policy=Consent(),
        set_attesto_fetcher=_Documents(alg),
    )


def test_metadata_document_jarm_alg_is_used_jarm_3() -> None:
    app = _document_app("RS256")
    query = _query(client_id=DOCUMENT, redirect_uri="https://connector.example/cb")
    res = app.get(AUTHORIZE, {**query, "response_mode": "jwt"}, headers=USER, status=302)
    response = parse_qs(urlsplit(res.headers["Location"]).query)["response"][0]
    keys = KeySet.import_key_set(app.get("/.well-known/jwks.json").json)
    token = jwt.decode(response, keys, algorithms=["RS256"])
    assert token.claims["aud"] == DOCUMENT


def test_metadata_document_with_an_unsigned_alg_is_refused_jarm_3() -> None:
    app = _document_app("PS256")
    query = _query(client_id=DOCUMENT, redirect_uri="https://connector.example/cb")
    res = app.get(AUTHORIZE, {**query, "response_mode": "jwt"}, headers=USER, status=400)
    assert "Location" not in res.headers
    assert "<code>invalid_client</code>: the client is unknown" in res.text


def test_without_an_authorization_endpoint_only_query_is_advertised_rule6() -> None:
    doc = as_app().get("/.well-known/oauth-authorization-server").json
    assert doc["response_modes_supported"] == ["query"]
    assert "authorization_signing_alg_values_supported" not in doc
