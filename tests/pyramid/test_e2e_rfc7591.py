"""End to end: dynamic client registration (RFC 7591 §3, RFC 7592 §2) with the bodies real
clients send, then a full authorization with the registered client; metadata, access
control and every refusal with its exact error."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asrv_support import HTTPS, ISSUER, Consent, as_app, verify_access_token
from pyramid.exceptions import ConfigurationExecutionError
from webtest import TestApp

from pyramid_attesto.core.errors import TemporarilyUnavailable
from pyramid_attesto.core.outbound import FetchedDocument
from pyramid_attesto.core.registration import ClientMetadata, RegistrationContext
from pyramid_attesto.core.secret import hash_secret

REGISTER = "/oauth/register"
FIXTURES = Path(__file__).parent.parent / "fixtures"
REQUESTS: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "registration_requests.json").read_text()
)
VERIFIER = "r" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
USER = {"X-Test-User": "alice"}
ENABLED = {
    "attesto.registration.enabled": "true",
    "attesto.registration_store": "memory",
    "attesto.registration.default_scope": "read",
}


def _app(**settings: str) -> TestApp:
    return as_app({**ENABLED, **settings}, set_attesto_consent_policy=Consent())


def _register(app: TestApp, body: Any, status: int = 201, **kwargs: Any) -> Any:
    return app.post(
        REGISTER,
        json.dumps(body),
        content_type="application/json",
        status=status,
        **kwargs,
    )


def _authorize(app: TestApp, client_id: str, redirect_uri: str, **extra: str) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": "s1",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        **extra,
    }
    res = app.get("/oauth/authorize", query, headers=USER, status=302)
    params = parse_qs(urlsplit(res.headers["Location"]).query)
    assert params["iss"] == [ISSUER]
    return params["code"][0]


def test_metadata_advertises_the_registration_endpoint_rfc8414_2() -> None:
    doc = _app().get("/.well-known/oauth-authorization-server").json
    assert doc["registration_endpoint"] == ISSUER + REGISTER


def test_mcp_python_sdk_registers_then_authorizes_with_client_secret_post() -> None:
    app = _app()
    res = _register(app, REQUESTS["mcp_python_sdk"])
    assert res.headers["Cache-Control"] == "no-store"
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    client = res.json
    assert client["token_endpoint_auth_method"] == "client_secret_post"
    assert client["application_type"] == "native"
    assert client["scope"] == "read"
    assert client["registration_client_uri"] == f"{ISSUER}{REGISTER}/{client['client_id']}"
    # A full authorization: no scope in the request, the registered default applies.
    code = _authorize(app, client["client_id"], "http://localhost:3030/callback")
    tokens = app.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://localhost:3030/callback",
            "code_verifier": VERIFIER,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
        status=200,
    ).json
    token = verify_access_token(app, tokens["access_token"])
    assert (token.subject, token.client_id, token.scopes) == (
        "alice",
        client["client_id"],
        ("read",),
    )
    assert tokens["refresh_token"]  # registered for refresh_token, no offline_access needed
    refreshed = app.post(
        "/oauth/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
        status=200,
    ).json
    assert refreshed["access_token"]


def test_a_wrong_secret_of_a_registered_client_is_invalid_client_rfc6749_5_2() -> None:
    app = _app()
    client = _register(app, REQUESTS["mcp_python_sdk"]).json
    res = app.post(
        "/oauth/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": client["client_id"],
            "client_secret": "wrong",
        },
        status=401,
    )
    assert res.json["error"] == "invalid_client"


def test_hosted_connector_on_a_public_only_server_gets_none_and_authorizes() -> None:
    """claude-ai-mcp#82: client_secret_post asked, ``none`` granted and used."""
    app = _app(**{"attesto.registration.auth_methods": "none"})
    client = _register(app, REQUESTS["hosted_connector"]).json
    assert client["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in client
    callback = "https://claude.ai/api/mcp/auth_callback"
    code = _authorize(app, client["client_id"], callback, scope="read")
    tokens = app.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback,
            "code_verifier": VERIFIER,
            "client_id": client["client_id"],
        },
        status=200,
    ).json
    assert tokens["token_type"] == "Bearer"


def test_native_loopback_client_redirects_to_any_port_rfc8252_7_3() -> None:
    app = _app()
    client = _register(app, REQUESTS["native_loopback"]).json
    code = _authorize(app, client["client_id"], "http://127.0.0.1:51000/oauth/callback")
    assert code


def test_an_untrusted_client_error_is_shown_locally_before_interaction_d16() -> None:
    """RFC 9700 §4.11.2: a registered client's error is not redirected before the user
    interacted (an unknown scope here)."""
    app = _app()
    client = _register(app, REQUESTS["native_loopback"]).json
    res = app.get(
        "/oauth/authorize",
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": "http://127.0.0.1:51000/oauth/callback",
            "scope": "not-a-scope",
            "code_challenge": CHALLENGE.decode(),
            "code_challenge_method": "S256",
        },
        headers=USER,
        status=400,
    )
    assert "invalid_scope" in res.text
    assert "Location" not in res.headers


def test_read_and_delete_with_the_registration_access_token_rfc7592_2() -> None:
    app = _app()
    client = _register(app, REQUESTS["hosted_connector"]).json
    uri = urlsplit(client["registration_client_uri"]).path
    auth = {"Authorization": f"Bearer {client['registration_access_token']}"}
    read = app.get(uri, headers=auth, status=200)
    assert read.headers["Cache-Control"] == "no-store"
    assert read.json["client_id"] == client["client_id"]
    assert "client_secret" not in read.json
    app.delete(uri, headers=auth, status=204)
    res = app.get(uri, headers=auth, status=401)
    assert res.json["error"] == "invalid_token"
    # The deleted client no longer authenticates.
    gone = app.post(
        "/oauth/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
        status=401,
    )
    assert gone.json["error"] == "invalid_client"


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic Zm9vOmJhcg=="])
def test_the_client_configuration_endpoint_needs_its_token_rfc7592_2(header: str | None) -> None:
    app = _app()
    client = _register(app, REQUESTS["hosted_connector"]).json
    uri = urlsplit(client["registration_client_uri"]).path
    headers = {"Authorization": header} if header else {}
    res = app.get(uri, headers=headers, status=400 if header and "Basic" in header else 401)
    if res.status_int == 401:
        assert res.json["error"] == "invalid_token"
        assert res.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    else:
        assert res.json["error"] == "invalid_request"


def test_unknown_client_configuration_is_401_rfc7592_2_1() -> None:
    res = _app().delete(f"{REGISTER}/nobody", headers={"Authorization": "Bearer x"}, status=401)
    assert res.json["error"] == "invalid_token"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"redirect_uris": ["http://app.example/cb"], "application_type": "web"},
            "invalid_redirect_uri",
        ),
        (
            {"redirect_uris": ["https://app.example/cb"], "grant_types": ["implicit"]},
            "invalid_client_metadata",
        ),
        (
            {"redirect_uris": ["https://app.example/cb"], "software_statement": "a.b.c"},
            "unapproved_software_statement",
        ),
        ([1, 2], "invalid_client_metadata"),
    ],
)
def test_invalid_metadata_rfc7591_3_2_2(body: Any, error: str) -> None:
    res = _register(_app(), body, status=400)
    assert res.json["error"] == error
    assert res.headers["Cache-Control"] == "no-store"


def test_a_body_that_is_not_json_rfc7591_3_2_2() -> None:
    app = _app()
    res = app.post(REGISTER, b"{nope", content_type="application/json", status=400)
    assert res.json["error"] == "invalid_client_metadata"
    deep = b"[" * 100 + b"]" * 100
    res = app.post(REGISTER, deep, content_type="application/json", status=400)
    assert res.json["error"] == "invalid_client_metadata"


def test_a_form_body_is_invalid_request_rfc7591_3() -> None:
    res = _app().post(REGISTER, {"redirect_uris": "x"}, status=400)
    assert res.json["error"] == "invalid_request"


def test_plain_http_is_refused_d23() -> None:
    app = _app()
    res = app.post(
        REGISTER,
        json.dumps(REQUESTS["hosted_connector"]),
        content_type="application/json",
        extra_environ={"wsgi.url_scheme": "http"},
        status=400,
    )
    assert res.json["error"] == "invalid_request"


def test_methods_and_cors_preflight_d17() -> None:
    app = _app()
    assert app.get(REGISTER, status=405).headers["Allow"] == "POST"
    preflight = app.options(REGISTER, status=204)
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert app.patch(f"{REGISTER}/x", status=405).headers["Allow"] == "GET, PUT, DELETE"
    preflight = app.options(f"{REGISTER}/x", status=204)
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET, PUT, DELETE"


def test_registration_is_off_by_default() -> None:
    app = as_app()
    _register(app, REQUESTS["hosted_connector"], status=404)
    app.get(f"{REGISTER}/x", status=404)
    assert "registration_endpoint" not in app.get("/.well-known/oauth-authorization-server").json


def test_an_initial_access_token_gates_registration_rfc7591_3() -> None:
    app = _app(**{"attesto.registration.initial_access_tokens": hash_secret("open-sesame")})
    res = _register(app, REQUESTS["hosted_connector"], status=401)
    assert res.json["error"] == "invalid_token"
    assert res.headers["WWW-Authenticate"].startswith("Bearer")
    _register(app, REQUESTS["hosted_connector"], headers={"Authorization": "Bearer open-sesame"})


class RateLimit:
    def __init__(self) -> None:
        self.seen: list[str | None] = []

    def check_registration(self, metadata: ClientMetadata, context: RegistrationContext) -> None:
        self.seen.append(context.remote_addr)
        if len(self.seen) > 1:
            raise TemporarilyUnavailable("too many registrations", reason="rate", status=429)


def test_the_gate_rate_limits_registration_d18() -> None:
    gate = RateLimit()
    app = as_app(ENABLED, set_attesto_registration_gate=gate, set_attesto_consent_policy=Consent())
    _register(
        app, REQUESTS["hosted_connector"], extra_environ={**HTTPS, "REMOTE_ADDR": "198.51.100.7"}
    )
    res = _register(app, REQUESTS["hosted_connector"], status=429)
    assert res.json["error"] == "temporarily_unavailable"
    assert gate.seen[0] == "198.51.100.7"


def test_registration_without_a_store_is_a_configuration_error_d24() -> None:
    with pytest.raises(ConfigurationExecutionError, match="registration_store"):
        as_app({"attesto.registration.enabled": "true"})


def test_registration_methods_must_be_served_by_the_token_endpoint() -> None:
    with pytest.raises(ConfigurationExecutionError, match="auth_methods"):
        as_app({**ENABLED, "attesto.registration.auth_methods": "client_secret_jwt"})


def _query(client_id: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": "http://127.0.0.1:51000/oauth/callback",
        "scope": "read",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        **extra,
    }


def test_prompt_none_for_an_untrusted_client_is_shown_locally_d16() -> None:
    app = _app()
    client = _register(app, REQUESTS["native_loopback"]).json
    query = _query(client["client_id"], prompt="none")
    res = app.get("/oauth/authorize", query, headers={"X-Test-User": "none"}, status=400)
    assert "login_required" in res.text


def test_a_denial_after_the_user_acted_is_redirected_d16() -> None:
    app = _app()
    client = _register(app, REQUESTS["native_loopback"]).json
    headers = {**USER, "X-Test-Consent": "deny"}
    res = app.get("/oauth/authorize", _query(client["client_id"]), headers=headers, status=302)
    assert parse_qs(urlsplit(res.headers["Location"]).query)["error"] == ["access_denied"]


class ClientKeys:
    """Serves a registered client's JWK Set at its jwks_uri (the injected fetcher)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.fetched: list[str] = []

    def fetch(self, url: str) -> FetchedDocument:
        self.fetched.append(url)
        return FetchedDocument(url=url, body=json.dumps(self.jwks).encode(), headers={})


def test_private_key_jwt_with_a_jwks_uri_authenticates_through_the_fetcher_rfc7523_2_2() -> None:
    from asrv_support import JWT_CLIENT_KEY, _public_jwk, client_assertion

    keys = ClientKeys({"keys": [_public_jwk(JWT_CLIENT_KEY, "k1")]})
    app = as_app(ENABLED, set_attesto_consent_policy=Consent(), set_attesto_fetcher=keys)
    body = {
        **REQUESTS["native_loopback"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": "https://agent.example/jwks.json",
    }
    client = _register(app, body).json
    assert "client_secret" not in client
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "not-a-refresh-token",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion(client["client_id"]),
    }
    # Authenticated (the keys came from the jwks_uri); the grant itself is refused.
    res = app.post("/oauth/token", form, status=400)
    assert res.json["error"] == "invalid_grant"
    assert keys.fetched == ["https://agent.example/jwks.json"]
