"""End to end: authorization-server metadata (RFC 8414) and OpenID Provider metadata (OpenID
Connect Discovery 1.0), served at the root under any route prefix (DESIGN.md D3)."""

from __future__ import annotations

import pytest
from asrv_support import ES256_ONLY, ISSUER, as_app, make_app
from pyramid.exceptions import ConfigurationExecutionError
from pyramid.interfaces import IRoutesMapper

from pyramid_attesto.server import ENDPOINTS, get_server

_app = make_app


def test_metadata_at_the_root_rfc8414_3() -> None:
    app = _app({"attesto.issuer": ISSUER})
    res = app.get("/.well-known/oauth-authorization-server", status=200)
    assert res.content_type == "application/json"
    doc = res.json
    # RFC 8414 §3.3: the issuer member is identical to the issuer the metadata was asked for.
    assert doc["issuer"] == ISSUER
    assert doc["jwks_uri"] == "https://id.example/.well-known/jwks.json"
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["request_uri_parameter_supported"] is False
    assert "max-age=300" in res.headers["Cache-Control"]
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    assert "WWW-Authenticate" not in res.headers


def test_metadata_advertises_only_enabled_endpoints_rfc8414_2() -> None:
    # Without a client store no client endpoint is served, and none is advertised.
    app = _app({"attesto.issuer": ISSUER})
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert not {k for k in doc if k.endswith("_endpoint")}
    assert doc["grant_types_supported"] == []
    app.post("/oauth/token", status=404)


def test_metadata_advertises_what_the_token_endpoint_enforces_rfc8414_2() -> None:
    app = as_app()
    doc = app.get("/.well-known/oauth-authorization-server").json
    advertised = {k: v for k, v in doc.items() if k.endswith("_endpoint")}
    # Without a consent policy nobody can log in: no authorization or PAR endpoint.
    browser = {
        "authorization_endpoint",
        "pushed_authorization_request_endpoint",
        "userinfo_endpoint",
    }
    # Registration is off unless attesto.registration.enabled.
    assert set(advertised) == {e.member for e in ENDPOINTS} - browser - {"registration_endpoint"}
    mapper = app.app.registry.getUtility(IRoutesMapper)
    patterns = {r.pattern for r in mapper.get_routes()}
    for url in advertised.values():
        assert url.removeprefix(ISSUER) in patterns
    assert doc["token_endpoint"] == "https://id.example/oauth/token"
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
        "private_key_jwt",
    ]
    assert "RS256" in doc["token_endpoint_auth_signing_alg_values_supported"]
    assert "none" not in doc["token_endpoint_auth_signing_alg_values_supported"]
    assert doc["dpop_signing_alg_values_supported"][0] == "ES256"


def test_metadata_follows_the_settings_rfc8414_2() -> None:
    app = as_app(
        {
            "attesto.token_endpoint_auth_methods": "client_secret_basic",
            "attesto.dpop.enabled": "false",
            "attesto.grant_types_supported": "client_credentials refresh_token",
        }
    )
    doc = app.get("/.well-known/oauth-authorization-server").json
    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_basic"]
    assert "token_endpoint_auth_signing_alg_values_supported" not in doc
    assert "dpop_signing_alg_values_supported" not in doc
    assert doc["grant_types_supported"] == ["client_credentials", "refresh_token"]


def test_metadata_stays_at_the_root_under_a_prefix_d3() -> None:
    app = _app({"attesto.issuer": ISSUER}, route_prefix="/mcp/oauth")
    assert app.get("/.well-known/oauth-authorization-server").json["issuer"] == ISSUER
    app.get("/mcp/oauth/.well-known/oauth-authorization-server", status=404)


def test_issuer_with_a_path_is_served_path_inserted_rfc8414_3_1() -> None:
    app = _app({"attesto.issuer": "https://id.example/tenant"})
    res = app.get("/.well-known/oauth-authorization-server/tenant", status=200)
    assert res.json["issuer"] == "https://id.example/tenant"
    # Not at the bare location, which would name another issuer (RFC 8414 §3.3).
    app.get("/.well-known/oauth-authorization-server", status=404)
    app.get("/.well-known/oauth-authorization-server/other", status=404)


def test_openid_configuration_appended_and_path_inserted_oidc_discovery_4() -> None:
    settings = {"attesto.issuer": "https://id.example/tenant", "attesto.scopes_supported": "openid"}
    app = _app(settings)
    appended = app.get("/tenant/.well-known/openid-configuration", status=200).json
    inserted = app.get("/.well-known/openid-configuration/tenant", status=200).json
    assert appended == inserted
    assert appended["issuer"] == "https://id.example/tenant"
    assert appended["subject_types_supported"] == ["public"]
    assert "RS256" in appended["id_token_signing_alg_values_supported"]
    app.get("/.well-known/openid-configuration", status=404)
    app.get("/other/.well-known/openid-configuration", status=404)


def test_openid_configuration_at_the_root_for_a_plain_issuer() -> None:
    app = _app({"attesto.issuer": ISSUER, "attesto.scopes_supported": "openid profile"})
    doc = app.get("/.well-known/openid-configuration", status=200).json
    assert doc["issuer"] == ISSUER
    assert doc["scopes_supported"] == ["openid", "profile"]
    oauth = app.get("/.well-known/oauth-authorization-server").json
    assert {k: v for k, v in doc.items() if k in oauth} == oauth


def test_no_openid_configuration_without_the_openid_scope() -> None:
    app = _app({"attesto.issuer": ISSUER, "attesto.scopes_supported": "read"})
    app.get("/.well-known/openid-configuration", status=404)


def test_metadata_is_never_a_redirect() -> None:
    app = _app({"attesto.issuer": ISSUER})
    # A trailing slash is another path, not a redirect to the document.
    app.get("/.well-known/oauth-authorization-server/", status=404)


def test_openid_needs_an_rs256_key_oidc_core_15_1() -> None:
    settings = {"attesto.issuer": ISSUER, "attesto.scopes_supported": "openid"}
    with pytest.raises(ConfigurationExecutionError, match="RS256"):
        _app(settings, keystore=ES256_ONLY)


def test_server_urls_use_the_issuer_origin_and_the_prefix() -> None:
    app = _app({"attesto.issuer": ISSUER, "attesto.route_prefix": "/auth"})
    server = get_server(app.app.registry)
    assert server.route_prefix == "/auth"
    assert all(url.startswith("https://id.example/auth/") for url in server.endpoint_urls.values())


def test_metadata_with_a_consent_policy_advertises_the_code_flow_rfc8414_2() -> None:
    from asrv_support import Claims, Consent

    app = as_app(set_attesto_consent_policy=Consent(), set_attesto_claims_provider=Claims())
    doc = app.get("/.well-known/oauth-authorization-server").json
    members = {e.member for e in ENDPOINTS} - {"registration_endpoint"}  # off by default
    assert {k for k in doc if k.endswith("_endpoint")} == members
    assert doc["authorization_endpoint"] == "https://id.example/oauth/authorize"
    assert doc["pushed_authorization_request_endpoint"] == "https://id.example/oauth/par"
    assert doc["require_pushed_authorization_requests"] is False
    assert doc["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]
    assert doc["response_modes_supported"] == [
        "query",
        "form_post",
        "jwt",
        "query.jwt",
        "form_post.jwt",
    ]
    assert doc["authorization_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert doc["request_parameter_supported"] is False  # no attesto.request_object_policy
    assert doc["authorization_response_iss_parameter_supported"] is True
