"""End to end: bad input at the token endpoint (RFC 6749 §3.2, §5.2) is a clear OAuth error
with ``Cache-Control: no-store``, never a 500; transport rules of DESIGN.md D23."""

from __future__ import annotations

from typing import Any

import pytest
from asrv_support import as_app, basic
from webtest import TestApp

TOKEN = "/oauth/token"
FORM = "application/x-www-form-urlencoded"


def _error(res: Any, status: int, error: str, description: str | None = None) -> None:
    assert res.status_int == status
    assert res.content_type == "application/json"
    assert res.headers["Cache-Control"] == "no-store"
    assert res.headers["x-tm"] == "commit"
    assert res.json["error"] == error
    if description is not None:
        assert res.json["error_description"] == description


@pytest.fixture(scope="module")
def app() -> TestApp:
    return as_app({"attesto.max_body_bytes": "1024"})


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405_rfc6749_3_2(app: TestApp, method: str) -> None:
    res = app.request(TOKEN, method=method, status=405)
    _error(res, 405, "invalid_request", "this endpoint accepts POST")
    assert res.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    "content_type", ["application/json", "multipart/form-data; boundary=x", "text/plain", None]
)
def test_wrong_content_type_is_invalid_request_rfc6749_3_2(
    app: TestApp, content_type: str | None
) -> None:
    headers = basic("svc")
    if content_type is not None:
        headers["Content-Type"] = content_type
    res = app.request(
        "https://id.example" + TOKEN,
        method="POST",
        body=b"grant_type=client_credentials",
        headers=headers,
        expect_errors=True,
    )
    _error(
        res, 400, "invalid_request", "the request body must be application/x-www-form-urlencoded"
    )


def test_charset_parameter_is_accepted_rfc6749_3_2(app: TestApp) -> None:
    headers = {**basic("svc"), "Content-Type": f"{FORM}; charset=UTF-8"}
    app.post(TOKEN, b"grant_type=client_credentials", headers=headers, status=200)


def test_repeated_parameter_is_invalid_request_rfc6749_3_2(app: TestApp) -> None:
    params = [("grant_type", "client_credentials"), ("grant_type", "client_credentials")]
    res = app.post(TOKEN, params, headers=basic("svc"), expect_errors=True)
    _error(res, 400, "invalid_request", "the grant_type parameter is repeated")


def test_repeated_scope_is_invalid_request_rfc6749_3_2(app: TestApp) -> None:
    params = [("grant_type", "client_credentials"), ("scope", "read"), ("scope", "write")]
    res = app.post(TOKEN, params, headers=basic("svc"), expect_errors=True)
    _error(res, 400, "invalid_request", "the scope parameter is repeated")


def test_repeated_client_id_is_invalid_request_rfc6749_3_2(app: TestApp) -> None:
    params = [
        ("grant_type", "client_credentials"),
        ("client_id", "svc-post"),
        ("client_id", "svc-post"),
        ("client_secret", "post-secret-0123456789"),
    ]
    res = app.post(TOKEN, params, expect_errors=True)
    _error(res, 400, "invalid_request")


def test_oversized_body_is_invalid_request(app: TestApp) -> None:
    body = b"grant_type=client_credentials&pad=" + b"x" * 2000
    res = app.post(TOKEN, body, headers={**basic("svc"), "Content-Type": FORM}, expect_errors=True)
    _error(res, 400, "invalid_request", "the request body is too large")


@pytest.mark.parametrize(
    "body",
    [b"grant_type=client_credentials&scope=%FF", b"grant_type=client_credentials&scope=\xff"],
)
def test_non_utf8_body_is_invalid_request(app: TestApp, body: bytes) -> None:
    res = app.post(TOKEN, body, headers={**basic("svc"), "Content-Type": FORM}, expect_errors=True)
    _error(res, 400, "invalid_request", "the request body is not valid form data")


def test_nul_in_a_parameter_is_invalid_request(app: TestApp) -> None:
    body = b"grant_type=client_credentials&scope=read%00"
    res = app.post(TOKEN, body, headers={**basic("svc"), "Content-Type": FORM}, expect_errors=True)
    _error(res, 400, "invalid_request")


def test_missing_everything_is_invalid_client_rfc6749_5_2(app: TestApp) -> None:
    res = app.post(TOKEN, b"", headers={"Content-Type": FORM}, expect_errors=True)
    _error(res, 401, "invalid_client")
    assert res.headers["WWW-Authenticate"].startswith("Basic ")


def test_empty_grant_type_is_missing_rfc6749_3_2(app: TestApp) -> None:
    res = app.post(TOKEN, {"grant_type": ""}, headers=basic("svc"), expect_errors=True)
    _error(res, 400, "invalid_request", "the grant_type parameter is required")


def test_malformed_basic_header_is_invalid_client_rfc6749_2_3_1(app: TestApp) -> None:
    for value in ("Basic !!!", "Basic " + "a" * 5000, "Bearer x", "Basic"):
        res = app.post(
            TOKEN,
            {"grant_type": "client_credentials"},
            headers={"Authorization": value},
            expect_errors=True,
        )
        _error(res, 401, "invalid_client")


def test_plain_http_is_refused_d23() -> None:
    app = as_app()
    res = app.post(
        TOKEN,
        {"grant_type": "client_credentials"},
        headers=basic("svc"),
        extra_environ={"wsgi.url_scheme": "http"},
        expect_errors=True,
    )
    _error(res, 400, "invalid_request", "this endpoint is served over https only")


def test_forwarded_proto_from_an_untrusted_peer_changes_nothing_d23() -> None:
    app = as_app({"attesto.trusted_proxies": "10.0.0.1"})
    environ = {"wsgi.url_scheme": "http", "REMOTE_ADDR": "192.0.2.7"}
    headers = {**basic("svc"), "X-Forwarded-Proto": "https", "Forwarded": "proto=https"}
    res = app.post(
        TOKEN,
        {"grant_type": "client_credentials"},
        headers=headers,
        extra_environ=environ,
        expect_errors=True,
    )
    _error(res, 400, "invalid_request")


@pytest.mark.parametrize(
    "header", [{"X-Forwarded-Proto": "https"}, {"Forwarded": 'for=192.0.2.1;proto="https"'}]
)
def test_forwarded_proto_from_a_trusted_proxy_is_honoured_rule1(header: dict[str, str]) -> None:
    app = as_app({"attesto.trusted_proxies": "10.0.0.0/8"})
    environ = {"wsgi.url_scheme": "http", "REMOTE_ADDR": "10.1.2.3"}
    app.post(
        TOKEN,
        {"grant_type": "client_credentials"},
        headers={**basic("svc"), **header},
        extra_environ=environ,
        status=200,
    )


def test_http_allowed_for_a_loopback_issuer_without_require_https() -> None:
    app = as_app({"attesto.issuer": "http://127.0.0.1:6543", "attesto.require_https": "false"})
    res = app.post(
        TOKEN,
        {"grant_type": "client_credentials"},
        headers=basic("svc"),
        extra_environ={"wsgi.url_scheme": "http"},
        status=200,
    )
    assert res.json["token_type"] == "Bearer"


def test_credentials_in_the_query_string_are_ignored_rfc6749_2_3_1(app: TestApp) -> None:
    res = app.post(
        TOKEN + "?client_id=svc-post&client_secret=post-secret-0123456789",
        {"grant_type": "client_credentials"},
        expect_errors=True,
    )
    _error(res, 401, "invalid_client")


def test_token_endpoint_under_the_include_route_prefix() -> None:
    from asrv_support import CLIENTS, HTTPS, ISSUER, HostClients, make_app

    app = make_app(
        {"attesto.issuer": ISSUER},
        directives={"set_attesto_client_store": HostClients()},
        route_prefix="/mcp/oauth",
    )
    app.extra_environ = dict(HTTPS)
    app.post(
        "/mcp/oauth/token", {"grant_type": "client_credentials"}, headers=basic("svc"), status=200
    )
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["token_endpoint"] == "https://id.example/mcp/oauth/token"
    assert CLIENTS["svc"].confidential


def test_cors_on_token_and_revocation_only_d17(app: TestApp) -> None:
    for path in (TOKEN, "/oauth/revoke"):
        pre = app.options(path, status=204)
        assert pre.headers["Access-Control-Allow-Origin"] == "*"
        assert "DPoP" in pre.headers["Access-Control-Allow-Headers"]
        assert "Access-Control-Allow-Credentials" not in pre.headers
    res = app.post(TOKEN, {"grant_type": "client_credentials"}, headers=basic("svc"))
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    assert "DPoP-Nonce" in res.headers["Access-Control-Expose-Headers"]
    err = app.post(TOKEN, {"grant_type": "client_credentials"}, expect_errors=True)
    assert err.headers["Access-Control-Allow-Origin"] == "*"
    intro = app.post("/oauth/introspect", {"token": "x"}, headers=basic("svc"))
    assert "Access-Control-Allow-Origin" not in intro.headers
    app.options("/oauth/introspect", status=405)


class _BrokenClients:
    """A host client store with a bug: every lookup raises."""

    def load_client(self, client_id: str) -> Any:
        raise RuntimeError("host bug: secret-in-message-xyz")

    def verify_client_secret(self, client: Any, secret: str) -> bool:  # pragma: no cover
        return False

    def client_secret_for_jwt(self, client: Any) -> str | None:  # pragma: no cover
        return None


def test_a_host_bug_is_a_clean_server_error_rfc6749_5_2(caplog: pytest.LogCaptureFixture) -> None:
    """The last resort: an exception nobody expected is a JSON ``server_error`` with nothing
    of the exception in the body (the traceback goes to the log), never an HTML 500."""
    app = as_app(set_attesto_client_store=_BrokenClients())
    with caplog.at_level("ERROR", logger="pyramid_attesto"):
        res = app.post(
            TOKEN, {"grant_type": "client_credentials"}, headers=basic("svc"), status=500
        )
    assert res.content_type == "application/json"
    assert res.json == {"error": "server_error", "error_description": "the server could not answer"}
    assert res.headers["Cache-Control"] == "no-store"
    assert "xyz" not in res.text
    assert any("unexpected error" in r.getMessage() for r in caplog.records)


def test_the_last_resort_lets_pyramid_http_exceptions_through() -> None:
    from pyramid.httpexceptions import HTTPNotFound
    from pyramid.testing import DummyRequest

    from pyramid_attesto.views._http import unexpected_error_view

    raised = HTTPNotFound()
    assert unexpected_error_view(raised, DummyRequest()) is raised
