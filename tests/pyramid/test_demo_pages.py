"""The demo's login and consent pages, its API and its MCP endpoint, driven with WebTest:
every branch (the Chromium smoke test only walks the happy path and a deny)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from webtest import TestApp

from pyramid_attesto.demo import demo_settings, make_app
from pyramid_attesto.demo.host import CONFIDENTIAL_CLIENT_SECRET, check_password

ORIGIN = "http://127.0.0.1:6543"
VERIFIER = "v" * 50
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")


@pytest.fixture
def browser(tmp_path: Path) -> TestApp:
    """A fresh demo (its own var/: database, keys, consents) and a fresh cookie jar."""
    return TestApp(
        make_app(demo_settings(ORIGIN, tmp_path / "var")),
        extra_environ={"HTTP_HOST": "127.0.0.1:6543"},
    )


def _authorize(app: TestApp, **extra: str) -> Any:
    params = {
        "response_type": "code",
        "client_id": "demo-web",
        "redirect_uri": f"{ORIGIN}/callback",
        "scope": "openid read:reports",
        "state": "s1",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        "resource": f"{ORIGIN}/mcp",
        **extra,
    }
    return app.get("/oauth/authorize?" + urlencode(params))


def _login(app: TestApp, page: Any, user: str = "alice", password: str = "wonderland") -> Any:
    form = page.forms[0]
    form["username"] = user
    form["password"] = password
    return form.submit()


def _query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


def test_passwords_are_checked_against_scrypt_hashes() -> None:
    assert check_password("alice", "wonderland") is not None
    assert check_password("bob", "builder") is not None
    assert check_password("alice", "builder") is None
    assert check_password("nobody", "wonderland") is None


def test_login_page_shows_the_demo_users_and_d15_headers(browser: TestApp) -> None:
    page = _authorize(browser)
    assert page.status_int == 200
    for shown in ("alice", "wonderland", "bob", "builder"):
        assert shown in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in page.headers["Cache-Control"]
    # The page links only to itself: no third-party resource (D15).
    assert "https://" not in page.text


def test_wrong_password_shows_the_login_page_again(browser: TestApp) -> None:
    page = _login(browser, _authorize(browser), password="nope")
    assert page.status_int == 200
    assert "Wrong username or password" in page.text
    assert page.forms[0]["next"].value.startswith(f"{ORIGIN}/oauth/authorize?")


def test_login_then_consent_then_code_then_token_then_api(browser: TestApp) -> None:
    resumed = _login(browser, _authorize(browser))
    assert resumed.status_int == 303
    consent = resumed.follow()
    assert "Demo Web App" in consent.text
    assert "127.0.0.1:6543" in consent.text
    assert "read:reports" in consent.text
    back = consent.forms[0].submit("decision", value="allow")
    assert back.status_int == 303
    redirect = back.follow()
    assert redirect.status_int == 302
    query = _query(redirect.location)
    assert query["state"] == ["s1"]
    assert query["iss"] == [ORIGIN]
    token = browser.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": f"{ORIGIN}/callback",
            "code_verifier": VERIFIER,
        },
        extra_environ={"HTTP_AUTHORIZATION": _basic()},
    ).json
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    reports = browser.get("/api/reports", headers=auth).json["reports"]
    assert {r["owner"] for r in reports} == {"alice"}
    me = browser.get("/api/me", headers=auth).json
    assert me["sub"] == "alice"
    # Consent is remembered: the same request goes straight back with a code.
    again = _authorize(browser)
    assert again.status_int == 302
    assert "code" in _query(again.location)


def _basic() -> str:
    raw = f"demo-web:{CONFIDENTIAL_CLIENT_SECRET}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def test_deny_redirects_with_access_denied_rfc6749_4_1_2_1(browser: TestApp) -> None:
    consent = _login(browser, _authorize(browser, state="s2"), user="bob", password="builder")
    back = consent.follow().forms[0].submit("decision", value="deny")
    redirect = back.follow()
    query = _query(redirect.location)
    assert redirect.location.startswith(f"{ORIGIN}/callback?")
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["s2"]
    assert query["iss"] == [ORIGIN]


def test_consent_without_csrf_token_is_refused(browser: TestApp) -> None:
    consent = _login(browser, _authorize(browser)).follow()
    ticket = consent.forms[0]["ticket"].value
    refused = browser.post("/consent", {"ticket": ticket, "decision": "allow"}, status=400)
    assert "security token" in refused.text
    wrong = browser.post(
        "/consent", {"ticket": ticket, "decision": "allow", "csrf_token": "x" * 40}, status=400
    )
    assert "security token" in wrong.text


def test_login_without_csrf_token_is_refused(browser: TestApp) -> None:
    page = _authorize(browser)
    form = page.forms[0]
    browser.post(
        "/login",
        {"username": "alice", "password": "wonderland", "next": form["next"].value},
        status=400,
    )


def test_login_refuses_a_foreign_next_url(browser: TestApp) -> None:
    page = _authorize(browser)
    form = page.forms[0]
    form["next"].force_value("https://evil.example/")
    form["username"] = "alice"
    form["password"] = "wonderland"
    refused = form.submit(status=400)
    assert "evil.example" not in refused.text


def test_a_broader_request_asks_again_d16(browser: TestApp) -> None:
    consent = _login(browser, _authorize(browser, scope="read:reports")).follow()
    consent.forms[0].submit("decision", value="allow").follow()
    again = _authorize(browser, scope="openid profile read:reports")
    assert again.status_int == 200
    assert "Allow" in again.text


def test_revoking_consent_asks_again(browser: TestApp) -> None:
    consent = _login(browser, _authorize(browser)).follow()
    consent.forms[0].submit("decision", value="allow").follow()
    account = browser.get("/account")
    assert "demo-web" in account.text
    revoke = next(f for f in account.forms.values() if f.action == "/account/revoke")
    revoke.submit().follow()
    assert _authorize(browser).status_int == 200  # the consent page again


def test_prompt_none_without_login_gives_login_required_oidc_3_1_2_6(browser: TestApp) -> None:
    redirect = _authorize(browser, prompt="none")
    assert _query(redirect.location)["error"] == ["login_required"]


def test_page_escapes_client_supplied_values(browser: TestApp) -> None:
    page = _authorize(browser, state="<script>alert(1)</script>")
    assert "<script>" not in page.text


def test_mcp_without_a_token_is_challenged_with_resource_metadata_rfc9728_5_1(
    browser: TestApp,
) -> None:
    res = browser.post("/mcp", "{}", content_type="application/json", status=401)
    challenge = res.headers["WWW-Authenticate"]
    assert f'resource_metadata="{ORIGIN}/.well-known/oauth-protected-resource/mcp"' in challenge
    metadata = browser.get("/.well-known/oauth-protected-resource/mcp").json
    assert metadata["resource"] == f"{ORIGIN}/mcp"
    assert metadata["authorization_servers"] == [ORIGIN]
    server = browser.get("/.well-known/oauth-authorization-server").json
    assert server["issuer"] == ORIGIN
    assert "S256" in server["code_challenge_methods_supported"]


def _client_token(app: TestApp, resource: str) -> str:
    res = app.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": "read:reports", "resource": resource},
        extra_environ={"HTTP_AUTHORIZATION": _basic()},
    )
    token: str = res.json["access_token"]
    return token


def _rpc(app: TestApp, token: str, method: str, params: object = None, **kw: Any) -> Any:
    message: dict[str, object] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        message["params"] = params
    return app.post(
        "/mcp",
        json.dumps(message),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        **kw,
    )


def test_mcp_initialize_list_and_call(browser: TestApp) -> None:
    token = _client_token(browser, f"{ORIGIN}/mcp")
    init = _rpc(browser, token, "initialize", {"protocolVersion": "2025-06-18"}).json
    assert init["result"]["protocolVersion"] == "2025-06-18"
    tools = _rpc(browser, token, "tools/list").json["result"]["tools"]
    assert {t["name"] for t in tools} == {"list_reports", "get_report"}
    listed = _rpc(browser, token, "tools/call", {"name": "list_reports"}).json["result"]
    assert len(listed["structuredContent"]["reports"]) == 3
    one = _rpc(browser, token, "tools/call", {"name": "get_report", "arguments": {"id": "q1-2026"}})
    assert one.json["result"]["structuredContent"]["total"] == 182_400
    unknown = _rpc(browser, token, "tools/call", {"name": "nope"}).json
    assert unknown["error"]["code"] == -32602


def test_mcp_refuses_a_foreign_origin_dns_rebinding(browser: TestApp) -> None:
    token = _client_token(browser, f"{ORIGIN}/mcp")
    res = browser.post(
        "/mcp",
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Origin": "http://evil.example"},
        status=403,
    )
    assert res.json["error"]["message"] == "Origin not allowed"
    ok = browser.post(
        "/mcp",
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Origin": ORIGIN},
    )
    assert ok.json["result"] == {}


def test_mcp_notification_is_accepted_and_bad_json_is_a_parse_error(browser: TestApp) -> None:
    token = _client_token(browser, f"{ORIGIN}/mcp")
    headers = {"Authorization": f"Bearer {token}"}
    note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert (
        browser.post("/mcp", note, content_type="application/json", headers=headers).status_int
        == 202
    )
    bad = browser.post("/mcp", "{", content_type="application/json", headers=headers, status=400)
    assert bad.json["error"]["code"] == -32700
    browser.get("/mcp", headers=headers, status=405)


def test_api_reports_needs_read_reports_rfc6750_3_1(browser: TestApp) -> None:
    browser.get("/api/reports", status=401)
    token = _client_token(browser, f"{ORIGIN}/api")
    reports = browser.get("/api/reports", headers={"Authorization": f"Bearer {token}"}).json
    assert len(reports["reports"]) == 3  # a client token reads them all


def test_token_for_another_audience_is_refused_rfc8707(browser: TestApp) -> None:
    res = browser.post(
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "scope": "read:reports",
            "resource": "https://elsewhere.example/api",
        },
        extra_environ={"HTTP_AUTHORIZATION": _basic()},
        status=400,
    )
    assert res.json["error"] == "invalid_target"
