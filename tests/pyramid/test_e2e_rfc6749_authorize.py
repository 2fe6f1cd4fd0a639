"""End to end: the authorization endpoint (RFC 6749 §4.1.1-§4.1.2, RFC 7636, RFC 9207,
DESIGN.md rule 5, D13, D15), through a test consent policy, then the code at the token
endpoint."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from asrv_support import ISSUER, Consent, DPoPKey, as_app, basic, events, verify_access_token
from webtest import TestApp

AUTHORIZE = "/oauth/authorize"
TOKEN = "/oauth/token"
VERIFIER = "q" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
USER = {"X-Test-User": "alice"}


@pytest.fixture
def app() -> TestApp:
    return as_app(set_attesto_consent_policy=Consent())


def _query(**overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": "pub",
        "redirect_uri": "http://127.0.0.1/cb",
        "scope": "read",
        "state": "xyz",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in params.items() if v != "-"}


def _redirect(res: Any) -> dict[str, list[str]]:
    assert res.status_int in (302, 303)
    location = res.headers["Location"]
    assert location.startswith(("http://127.0.0.1/cb?", "https://app.example/cb?"))
    return parse_qs(urlsplit(location).query)


def _browser_headers(res: Any) -> None:
    assert "frame-ancestors 'none'" in res.headers["Content-Security-Policy"]
    assert res.headers["X-Frame-Options"] == "DENY"
    assert res.headers["Referrer-Policy"] == "no-referrer"
    assert res.headers["Cache-Control"] == "no-store"


def _redeem(app: TestApp, code: str, **extra: str) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1/cb",
        "code_verifier": VERIFIER,
        "client_id": "pub",
    }
    return app.post(TOKEN, form, **extra)


def test_code_flow_rfc6749_4_1(app: TestApp) -> None:
    seen = events(app)
    res = app.get(AUTHORIZE, _query(), headers=USER, status=302)
    _browser_headers(res)
    params = _redirect(res)
    assert params["state"] == ["xyz"]
    assert params["iss"] == [ISSUER]  # RFC 9207 §2
    assert "code_issued" in [e.name for e in seen]
    tokens = _redeem(app, params["code"][0], status=200).json
    token = verify_access_token(app, tokens["access_token"])
    assert (token.subject, token.client_id, token.scopes) == ("alice", "pub", ("read",))
    # The code is single use.
    assert _redeem(app, params["code"][0], status=400).json["error"] == "invalid_grant"


def test_post_authorization_request_redirects_with_303_d15(app: TestApp) -> None:
    res = app.post(AUTHORIZE, _query(), headers=USER, status=303)
    assert _redirect(res)["code"]


def test_login_page_then_resume_from_the_stored_request_d13(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(), status=200)
    assert res.text == "login page"
    _browser_headers(res)
    resume = res.headers["X-Resume"]
    assert resume.startswith(ISSUER + "/oauth/authorize?client_id=pub&request_uri=urn")
    path = urlsplit(resume)
    # Extra parameters on the resumed request are not trusted again.
    query = path.query + "&" + urlencode({"scope": "admin", "state": "evil"})
    done = app.get(f"{path.path}?{query}", headers=USER, status=302)
    params = _redirect(done)
    assert params["state"] == ["xyz"]
    tokens = _redeem(app, params["code"][0], status=200).json
    assert tokens["scope"] == "read"
    # The pending request is claimed at code issuance: resuming again is refused locally.
    again = app.get(f"{path.path}?{path.query}", headers=USER, status=400)
    assert "invalid_request_uri" in again.text


def test_consent_denied_is_access_denied_with_state_and_iss_rfc6749_4_1_2_1(
    app: TestApp,
) -> None:
    res = app.get(AUTHORIZE, _query(), headers={**USER, "X-Test-Consent": "deny"}, status=302)
    params = _redirect(res)
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["xyz"]
    assert params["iss"] == [ISSUER]


def test_consent_page_is_returned(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(), headers={**USER, "X-Test-Consent": "page"}, status=200)
    assert res.text == "consent page"
    _browser_headers(res)


def test_prompt_none_without_login_is_login_required_oidc_core_3_1_2_6(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(prompt="none"), status=302)
    assert _redirect(res)["error"] == ["login_required"]


def test_prompt_none_needing_consent_is_consent_required_oidc_core_3_1_2_6(
    app: TestApp,
) -> None:
    headers = {**USER, "X-Test-Consent": "page"}
    res = app.get(AUTHORIZE, _query(prompt="none"), headers=headers, status=302)
    assert _redirect(res)["error"] == ["consent_required"]


def test_no_user_and_no_page_is_login_required(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(), headers={"X-Test-User": "none"}, status=302)
    assert _redirect(res)["error"] == ["login_required"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "nobody"},
        {"client_id": "-"},
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": "http://127.0.0.1/cb#frag"},
    ],
)
def test_errors_before_the_redirect_uri_is_valid_are_local_rule5(
    app: TestApp, overrides: dict[str, str]
) -> None:
    res = app.get(AUTHORIZE, _query(**overrides), headers=USER, status=400)
    assert "Location" not in res.headers
    assert res.content_type == "text/html"
    _browser_headers(res)


def test_repeated_client_id_is_local_rfc6749_3_1(app: TestApp) -> None:
    query = urlencode([*_query().items(), ("client_id", "pub")])
    res = app.get(f"{AUTHORIZE}?{query}", headers=USER, status=400)
    assert "invalid_request" in res.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": "-", "code_challenge_method": "-"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "admin"}, "invalid_scope"),
        ({"resource": "https://unknown.example"}, "invalid_target"),
    ],
)
def test_later_errors_are_redirected_with_state_and_iss_rfc6749_4_1_2_1(
    app: TestApp, overrides: dict[str, str], error: str
) -> None:
    res = app.get(AUTHORIZE, _query(**overrides), headers=USER, status=302)
    params = _redirect(res)
    assert params["error"] == [error]
    assert params["state"] == ["xyz"]
    assert params["iss"] == [ISSUER]


def test_error_page_escapes_and_echoes_no_parameters_d15(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(client_id="<script>alert(1)</script>"), status=400)
    assert "<script>" not in res.text
    assert "alert(1)" not in res.text


def test_wrong_method_is_405(app: TestApp) -> None:
    res = app.put(AUTHORIZE, status=405)
    assert res.headers["Allow"] == "GET, POST"


def test_non_utf8_query_is_a_local_error(app: TestApp) -> None:
    res = app.get(AUTHORIZE + "?client_id=%FF&response_type=code", status=400)
    assert "invalid_request" in res.text
    res = app.get(AUTHORIZE + "?client_id=pub&x=" + "a" * 20000, status=400)
    assert "invalid_request" in res.text


def test_missing_everything_is_a_local_error(app: TestApp) -> None:
    res = app.get(AUTHORIZE, status=400)
    assert "Location" not in res.headers


def test_dpop_jkt_binds_the_code_rfc9449_10(app: TestApp) -> None:
    key = DPoPKey()
    res = app.get(AUTHORIZE, _query(dpop_jkt=key.jkt), headers=USER, status=302)
    code = _redirect(res)["code"][0]
    assert _redeem(app, code, status=400).json["error"] == "invalid_dpop_proof"
    res = app.get(AUTHORIZE, _query(dpop_jkt=key.jkt), headers=USER, status=302)
    code = _redirect(res)["code"][0]
    ok = _redeem(app, code, headers={"DPoP": key.proof()}, status=200).json
    assert ok["token_type"] == "DPoP"


def test_confidential_client_with_openid_gets_an_id_token_oidc_core_3_1_3_3(
    app: TestApp,
) -> None:
    query = _query(client_id="web", redirect_uri="https://app.example/cb", scope="openid read")
    query["nonce"] = "n-123"
    res = app.get(AUTHORIZE, query, headers=USER, status=302)
    code = _redirect(res)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "https://app.example/cb",
        "code_verifier": VERIFIER,
    }
    body = app.post(TOKEN, form, headers=basic("web"), status=200).json
    assert body["id_token"]
    assert body["refresh_token"]


def test_endpoint_absent_without_a_consent_policy() -> None:
    app = as_app()
    app.get(AUTHORIZE, _query(), headers=USER, status=404)
    app.post("/oauth/par", {"client_id": "pub"}, status=404)


def test_parked_request_resumes_only_in_the_same_browser_d13(app: TestApp) -> None:
    res = app.get(AUTHORIZE, _query(), status=200)
    cookie = res.headers["Set-Cookie"]
    assert cookie.startswith("attesto_authz=")
    for attribute in ("Path=/oauth/authorize", "secure", "HttpOnly", "SameSite=Lax"):
        assert attribute.lower() in cookie.lower()
    resume = urlsplit(res.headers["X-Resume"])
    other = TestApp(app.app, extra_environ=dict(app.extra_environ))
    stolen = other.get(f"{resume.path}?{resume.query}", headers=USER, status=400)
    assert "invalid_request_uri" in stolen.text
    done = app.get(f"{resume.path}?{resume.query}", headers=USER, status=302)
    assert _redirect(done)["code"]


def test_max_age_needs_a_recent_authentication_oidc_core_3_1_2_1() -> None:
    import time as _time

    from pyramid_attesto.core.authorize import Authenticated

    class Recent(Consent):
        def __init__(self, auth_time: int | None) -> None:
            self.auth_time = auth_time

        def authenticate_resource_owner(self, request: Any, authorization: Any) -> object:
            return Authenticated("alice", auth_time=self.auth_time)

    now = int(_time.time())
    fresh = as_app(set_attesto_consent_policy=Recent(now - 10))
    assert _redirect(fresh.get(AUTHORIZE, _query(max_age="60"), status=302))["code"]
    for auth_time in (now - 600, None):
        stale = as_app(set_attesto_consent_policy=Recent(auth_time))
        res = stale.get(AUTHORIZE, _query(max_age="60"), status=302)
        assert _redirect(res)["error"] == ["login_required"]
