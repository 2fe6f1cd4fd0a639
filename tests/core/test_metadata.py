"""Discovery documents (RFC 8414 §2, OIDC Discovery §3, RFC 9728 §2) advertise exactly what
is enforced; well-known URLs are derived per RFC 8414 §3.1, OIDC Discovery §4, RFC 9728 §3.1."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import pytest

from pyramid_attesto.core import metadata
from pyramid_attesto.core.errors import ConfigurationError
from pyramid_attesto.core.metadata import (
    AuthorizationServerConfig,
    ProtectedResourceConfig,
    authorization_server_metadata,
    authorization_server_metadata_url,
    metadata_urls,
    openid_configuration,
    openid_configuration_path_inserted_url,
    openid_configuration_url,
    protected_resource_metadata,
    protected_resource_metadata_url,
    well_known_url,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
ISSUER = "https://as.example/tenant"
EP = ISSUER + "/oauth"


def full_config(**overrides: Any) -> AuthorizationServerConfig:
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": EP + "/authorize",
        "token_endpoint": EP + "/token",
        "jwks_uri": EP + "/jwks",
        "pushed_authorization_request_endpoint": EP + "/par",
        "revocation_endpoint": EP + "/revoke",
        "introspection_endpoint": EP + "/introspect",
        "registration_endpoint": EP + "/register",
        "userinfo_endpoint": EP + "/userinfo",
        "scopes_supported": ("openid", "profile", "read:reports", "offline_access"),
        "response_modes_supported": (
            "query",
            "form_post",
            "jwt",
            "query.jwt",
            "fragment.jwt",
            "form_post.jwt",
        ),
        "grant_types_supported": (
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        "token_endpoint_auth_methods_supported": (
            "client_secret_basic",
            "private_key_jwt",
            "tls_client_auth",
            "none",
        ),
        "token_endpoint_auth_signing_alg_values_supported": ("ES256", "PS256", "EdDSA"),
        "dpop_signing_alg_values_supported": ("ES256", "EdDSA"),
        "request_object_signing_alg_values_supported": ("ES256", "PS256", "EdDSA"),
        "authorization_signing_alg_values_supported": ("ES256", "RS256"),
        "introspection_signing_alg_values_supported": ("ES256",),
        "id_token_signing_alg_values_supported": ("RS256", "ES256"),
        "claims_supported": ("sub", "email", "email_verified"),
        "acr_values_supported": ("urn:example:loa:2",),
        "require_pushed_authorization_requests": True,
        "require_signed_request_object": True,
        "tls_client_certificate_bound_access_tokens": True,
        "mtls_endpoint_aliases": {
            "token_endpoint": "https://mtls.as.example/tenant/oauth/token",
            "pushed_authorization_request_endpoint": "https://mtls.as.example/tenant/oauth/par",
        },
        "client_id_metadata_document_supported": True,
    }
    settings.update(overrides)
    return AuthorizationServerConfig(**settings)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_minimal_document_rfc8414_2() -> None:
    config = AuthorizationServerConfig(
        issuer="https://as.example",
        authorization_endpoint="https://as.example/oauth/authorize",
        token_endpoint="https://as.example/oauth/token",
    )
    assert authorization_server_metadata(config) == {
        "issuer": "https://as.example",
        "authorization_endpoint": "https://as.example/oauth/authorize",
        "token_endpoint": "https://as.example/oauth/token",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }


def test_full_document_rfc8414_2() -> None:
    assert authorization_server_metadata(full_config()) == fixture("metadata_as_full.json")


def test_full_openid_document_oidc_discovery_3() -> None:
    doc = openid_configuration(full_config())
    assert doc == fixture("metadata_openid_full.json")
    # What every compliant client compares or requires.
    assert doc["issuer"] == ISSUER
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert doc["subject_types_supported"] == ["public"]


def test_iss_parameter_is_always_advertised_rfc9207_3() -> None:
    for config in (AuthorizationServerConfig(issuer="https://as.example"), full_config()):
        assert authorization_server_metadata(config)[
            "authorization_response_iss_parameter_supported"
        ]


def test_only_s256_is_advertised_rfc7636_4_3() -> None:
    assert authorization_server_metadata(full_config())["code_challenge_methods_supported"] == [
        "S256"
    ]


def test_unconfigured_endpoints_are_not_advertised_rfc8414_2() -> None:
    doc = authorization_server_metadata(AuthorizationServerConfig(issuer="https://as.example"))
    for member in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "pushed_authorization_request_endpoint",
        "require_pushed_authorization_requests",
        "revocation_endpoint",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint",
        "introspection_endpoint_auth_methods_supported",
        "registration_endpoint",
        "userinfo_endpoint",
        "dpop_signing_alg_values_supported",
        "authorization_signing_alg_values_supported",
        "request_object_signing_alg_values_supported",
        "mtls_endpoint_aliases",
        "client_id_metadata_document_supported",
        "tls_client_certificate_bound_access_tokens",
    ):
        assert member not in doc


def test_introspection_never_advertises_none_rfc7662_2_1() -> None:
    doc = authorization_server_metadata(full_config())
    assert "none" not in doc["introspection_endpoint_auth_methods_supported"]
    assert "none" in doc["token_endpoint_auth_methods_supported"]  # a public client's method


def test_signing_algs_only_with_a_jwt_method_rfc8414_2() -> None:
    config = full_config(token_endpoint_auth_methods_supported=("client_secret_basic",))
    doc = authorization_server_metadata(config)
    assert "token_endpoint_auth_signing_alg_values_supported" not in doc
    assert "revocation_endpoint_auth_signing_alg_values_supported" not in doc


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dpop_signing_alg_values_supported": ("none",)}, "none"),
        ({"request_object_signing_alg_values_supported": ("None",)}, "none"),
        ({"id_token_signing_alg_values_supported": ("RS256", "none")}, "none"),
        # RFC 8414 §2: a JWT method needs its signing algorithms
        ({"token_endpoint_auth_signing_alg_values_supported": ()}, "required"),
        # DESIGN.md D24: JARM needs a signing algorithm
        ({"authorization_signing_alg_values_supported": ()}, "JARM"),
        ({"response_modes_supported": ("query", "teleport")}, "unknown"),
        ({"pushed_authorization_request_endpoint": None}, "pushed"),
        (
            {
                "request_object_signing_alg_values_supported": (),
                "require_signed_request_object": True,
            },
            "request_object",
        ),
        ({"mtls_endpoint_aliases": {"authorization_endpoint": "https://m/a"}}, "alias"),
        (
            {
                "revocation_endpoint": None,
                "mtls_endpoint_aliases": {"revocation_endpoint": "https://m/r"},
            },
            "not configured",
        ),
        ({"mtls_endpoint_aliases": {"token_endpoint": "/relative"}}, "absolute"),
        ({"issuer": "https://as.example/"}, "trailing slash"),
        ({"issuer": "https://as.example?x=1"}, "query"),
        ({"issuer": "as.example"}, "query"),
        ({"token_endpoint": "https://as.example/token#f"}, "absolute"),
    ],
)
def test_configuration_is_refused_rfc8414_2(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        full_config(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwks_uri": None}, "jwks_uri"),
        ({"scopes_supported": ("profile",)}, "openid"),
        ({"id_token_signing_alg_values_supported": ("ES256",)}, "RS256"),  # OIDC Core §15.1
        ({"subject_types_supported": ()}, "subject_types"),
    ],
)
def test_openid_requirements_oidc_discovery_3(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        openid_configuration(full_config(**overrides))


def test_protected_resource_document_rfc9728_2() -> None:
    config = ProtectedResourceConfig(
        resource="https://api.example/mcp",
        authorization_servers=(ISSUER,),
        scopes_supported=("read:reports", "offline_access"),
        resource_name="Reports",
        resource_documentation="https://api.example/docs",
        tls_client_certificate_bound_access_tokens=True,
        dpop_signing_alg_values_supported=("ES256",),
        dpop_bound_access_tokens_required=True,
    )
    assert protected_resource_metadata(config) == {
        "resource": "https://api.example/mcp",
        "authorization_servers": [ISSUER],
        # MCP SEP-2207: offline_access is the AS's business, not the resource's
        "scopes_supported": ["read:reports"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Reports",
        "resource_documentation": "https://api.example/docs",
        "tls_client_certificate_bound_access_tokens": True,
        "dpop_signing_alg_values_supported": ["ES256"],
        "dpop_bound_access_tokens_required": True,
    }


def test_minimal_protected_resource_document_rfc9728_2() -> None:
    assert protected_resource_metadata(
        ProtectedResourceConfig(
            resource="https://api.example/",
            authorization_servers=("https://as.example",),
            jwks_uri="https://api.example/jwks",
            resource_policy_uri="https://api.example/policy",
            resource_tos_uri="https://api.example/tos",
        )
    ) == {
        "resource": "https://api.example/",
        "authorization_servers": ["https://as.example"],
        "jwks_uri": "https://api.example/jwks",
        "bearer_methods_supported": ["header"],
        "resource_policy_uri": "https://api.example/policy",
        "resource_tos_uri": "https://api.example/tos",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bearer_methods_supported": ("query",)}, "never"),  # RFC 9700 §4.3.2
        ({"bearer_methods_supported": ("cookie",)}, "unknown"),
        ({"resource": "https://api.example/#top"}, "fragment"),  # RFC 8707 §2
        ({"resource": "/mcp"}, "absolute"),
        ({"dpop_bound_access_tokens_required": True}, "dpop"),
        ({"dpop_signing_alg_values_supported": ("none",)}, "none"),
        ({"authorization_servers": ("https://as.example/",)}, "trailing"),
        ({"jwks_uri": "jwks"}, "absolute"),
    ],
)
def test_protected_resource_configuration_is_refused_rfc9728_2(
    overrides: dict[str, Any], message: str
) -> None:
    settings: dict[str, Any] = {"resource": "https://api.example/mcp", **overrides}
    with pytest.raises(ConfigurationError, match=message):
        ProtectedResourceConfig(**settings)


# -- well-known URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issuer", "rfc8414", "openid", "openid_inserted"),
    [
        (
            "https://as.example",
            "https://as.example/.well-known/oauth-authorization-server",
            "https://as.example/.well-known/openid-configuration",
            "https://as.example/.well-known/openid-configuration",
        ),
        (
            "https://as.example/tenant",
            "https://as.example/.well-known/oauth-authorization-server/tenant",
            "https://as.example/tenant/.well-known/openid-configuration",
            "https://as.example/.well-known/openid-configuration/tenant",
        ),
        (
            "https://as.example:8443/a/b",
            "https://as.example:8443/.well-known/oauth-authorization-server/a/b",
            "https://as.example:8443/a/b/.well-known/openid-configuration",
            "https://as.example:8443/.well-known/openid-configuration/a/b",
        ),
        (
            "http://127.0.0.1:6543/oauth",
            "http://127.0.0.1:6543/.well-known/oauth-authorization-server/oauth",
            "http://127.0.0.1:6543/oauth/.well-known/openid-configuration",
            "http://127.0.0.1:6543/.well-known/openid-configuration/oauth",
        ),
    ],
)
def test_issuer_well_known_urls_rfc8414_3_1(
    issuer: str, rfc8414: str, openid: str, openid_inserted: str
) -> None:
    assert authorization_server_metadata_url(issuer) == rfc8414
    assert openid_configuration_url(issuer) == openid
    assert openid_configuration_path_inserted_url(issuer) == openid_inserted


def test_metadata_urls_in_mcp_discovery_order_without_duplicates_rfc8414_5() -> None:
    assert metadata_urls("https://as.example", openid=True) == (
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration",
    )
    assert metadata_urls("https://as.example/t", openid=True) == (
        "https://as.example/.well-known/oauth-authorization-server/t",
        "https://as.example/t/.well-known/openid-configuration",
        "https://as.example/.well-known/openid-configuration/t",
    )
    assert metadata_urls("https://as.example/t", openid=False) == (
        "https://as.example/.well-known/oauth-authorization-server/t",
    )


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        # RFC 9728 §3.1 examples
        (
            "https://resource.example.com",
            "https://resource.example.com/.well-known/oauth-protected-resource",
        ),
        (
            "https://resource.example.com/",
            "https://resource.example.com/.well-known/oauth-protected-resource",
        ),
        (
            "https://resource.example.com/resource1",
            "https://resource.example.com/.well-known/oauth-protected-resource/resource1",
        ),
        (
            "https://api.example/public/mcp",
            "https://api.example/.well-known/oauth-protected-resource/public/mcp",
        ),
        (
            "https://api.example/mcp?tenant=a",
            "https://api.example/.well-known/oauth-protected-resource/mcp?tenant=a",
        ),
    ],
)
def test_protected_resource_well_known_urls_rfc9728_3_1(resource: str, url: str) -> None:
    assert protected_resource_metadata_url(resource) == url


@pytest.mark.parametrize("bad", ["relative/path", "https://as.example/#x", "https://as.example#"])
def test_well_known_url_needs_an_absolute_url_without_fragment(bad: str) -> None:
    with pytest.raises(ValueError, match="absolute"):
        well_known_url(bad, "oauth-authorization-server")


def test_the_documentation_examples_hold() -> None:
    failures, _ = doctest.testmod(metadata, optionflags=doctest.ELLIPSIS)
    assert failures == 0
