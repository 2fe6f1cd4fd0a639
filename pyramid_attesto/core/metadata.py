"""Discovery documents: authorization-server metadata (RFC 8414 §2), OpenID Provider metadata
(OpenID Connect Discovery 1.0 §3) and protected-resource metadata (RFC 9728 §2), and the
well-known URLs they are served at (RFC 8414 §3.1, RFC 9728 §3.1, OIDC Discovery §4).

The documents are built from typed configuration values and advertise exactly what the server
enforces (DESIGN.md rule 6), because clients act on them without asking:

- an endpoint appears only when it is configured (``None`` omits it);
- ``response_types_supported`` is always ``["code"]`` (the only flow served);
- ``code_challenge_methods_supported`` is always ``["S256"]`` (PKCE is S256 only; MCP clients
  refuse to continue when the member is absent);
- ``authorization_response_iss_parameter_supported`` is always ``true``: every authorization
  response carries ``iss`` (RFC 9207 §3);
- ``request_uri_parameter_supported`` is always ``false``: only the ``urn:`` references of
  pushed requests are accepted, never a URL to fetch (its OpenID default is ``true``);
- the algorithm ``none`` and the PKCE method ``plain`` are never advertised; a configuration
  that lists ``none`` as an algorithm is refused at startup;
- JARM response modes appear only with a JARM signing algorithm (DESIGN.md D24).

Well-known URLs: for an issuer or resource with a path, the well-known segment is inserted
between the host and the path (``https://h/.well-known/oauth-authorization-server/tenant``);
OpenID Connect appends it instead (``https://h/tenant/.well-known/openid-configuration``).
MCP clients try both, and the path-inserted OpenID form, in that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NotRequired, Required, TypedDict
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigurationError

__all__ = [
    "AUTHORIZATION_SERVER_WELL_KNOWN",
    "JARM_RESPONSE_MODES",
    "MTLS_ALIASABLE_ENDPOINTS",
    "OPENID_CONFIGURATION_WELL_KNOWN",
    "PROTECTED_RESOURCE_WELL_KNOWN",
    "AuthorizationServerConfig",
    "AuthorizationServerMetadata",
    "OpenIDProviderMetadata",
    "ProtectedResourceConfig",
    "ProtectedResourceMetadata",
    "authorization_server_metadata",
    "authorization_server_metadata_url",
    "metadata_urls",
    "openid_configuration",
    "openid_configuration_path_inserted_url",
    "openid_configuration_url",
    "protected_resource_metadata",
    "protected_resource_metadata_url",
    "well_known_url",
]

AUTHORIZATION_SERVER_WELL_KNOWN = "oauth-authorization-server"
OPENID_CONFIGURATION_WELL_KNOWN = "openid-configuration"
PROTECTED_RESOURCE_WELL_KNOWN = "oauth-protected-resource"

PLAIN_RESPONSE_MODES = frozenset({"query", "fragment", "form_post"})
JARM_RESPONSE_MODES = frozenset({"jwt", "query.jwt", "fragment.jwt", "form_post.jwt"})
_SIGNED_ASSERTION_METHODS = frozenset({"private_key_jwt", "client_secret_jwt"})
MTLS_ALIASABLE_ENDPOINTS = (
    "token_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "pushed_authorization_request_endpoint",
    "userinfo_endpoint",
    "registration_endpoint",
)
"""The endpoints RFC 8705 §5 lets a client reach at a mutual-TLS alias."""


# -- wire shapes ----------------------------------------------------------------------------


class AuthorizationServerMetadata(TypedDict, total=False):
    """RFC 8414 §2 and the members later specifications registered (RFC 8705 §3.3 and §5,
    RFC 9101 §10.5, RFC 9126 §5, RFC 9207 §3, RFC 9449 §5.1, RFC 9701 §6, JARM §4, CIMD)."""

    issuer: Required[str]
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    scopes_supported: list[str]
    response_types_supported: Required[list[str]]
    response_modes_supported: list[str]
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    service_documentation: str
    revocation_endpoint: str
    revocation_endpoint_auth_methods_supported: list[str]
    revocation_endpoint_auth_signing_alg_values_supported: list[str]
    introspection_endpoint: str
    introspection_endpoint_auth_methods_supported: list[str]
    introspection_endpoint_auth_signing_alg_values_supported: list[str]
    introspection_signing_alg_values_supported: list[str]
    code_challenge_methods_supported: list[str]
    pushed_authorization_request_endpoint: str
    require_pushed_authorization_requests: bool
    request_parameter_supported: bool
    request_uri_parameter_supported: bool
    request_object_signing_alg_values_supported: list[str]
    require_signed_request_object: bool
    authorization_signing_alg_values_supported: list[str]
    authorization_response_iss_parameter_supported: bool
    dpop_signing_alg_values_supported: list[str]
    tls_client_certificate_bound_access_tokens: bool
    mtls_endpoint_aliases: dict[str, str]
    client_id_metadata_document_supported: bool
    userinfo_endpoint: str
    end_session_endpoint: str
    acr_values_supported: list[str]
    claims_supported: list[str]
    claims_parameter_supported: bool
    ui_locales_supported: list[str]


class OpenIDProviderMetadata(AuthorizationServerMetadata, total=False):
    """OpenID Connect Discovery 1.0 §3: the RFC 8414 members plus the OpenID ones."""

    subject_types_supported: Required[list[str]]
    id_token_signing_alg_values_supported: Required[list[str]]


class ProtectedResourceMetadata(TypedDict):
    """RFC 9728 §2."""

    resource: str
    authorization_servers: NotRequired[list[str]]
    jwks_uri: NotRequired[str]
    scopes_supported: NotRequired[list[str]]
    bearer_methods_supported: NotRequired[list[str]]
    resource_name: NotRequired[str]
    resource_documentation: NotRequired[str]
    resource_policy_uri: NotRequired[str]
    resource_tos_uri: NotRequired[str]
    tls_client_certificate_bound_access_tokens: NotRequired[bool]
    dpop_signing_alg_values_supported: NotRequired[list[str]]
    dpop_bound_access_tokens_required: NotRequired[bool]


# -- configuration --------------------------------------------------------------------------


def _refuse_none(name: str, algs: Iterable[str]) -> None:
    for alg in algs:
        if alg.lower() == "none":
            raise ConfigurationError(f"{name}: the algorithm 'none' is never accepted")


def _require_absolute(name: str, url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise ConfigurationError(f"{name}: an absolute http(s) URL without fragment")


@dataclass(frozen=True, slots=True)
class AuthorizationServerConfig:
    """What the authorization server serves and enforces, as its metadata will say it.

    Endpoints left ``None`` are not served and not advertised. An empty algorithm list turns
    its feature off: no ``dpop_signing_alg_values_supported`` means DPoP is not offered, no
    ``request_object_signing_alg_values_supported`` means no ``request`` parameter, no
    ``authorization_signing_alg_values_supported`` means no JARM.
    """

    issuer: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    jwks_uri: str | None = None
    pushed_authorization_request_endpoint: str | None = None
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    registration_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    service_documentation: str | None = None
    scopes_supported: tuple[str, ...] = ()
    response_modes_supported: tuple[str, ...] = ("query", "form_post")
    grant_types_supported: tuple[str, ...] = ("authorization_code", "refresh_token")
    token_endpoint_auth_methods_supported: tuple[str, ...] = (
        "client_secret_basic",
        "client_secret_post",
        "none",
    )
    token_endpoint_auth_signing_alg_values_supported: tuple[str, ...] = ()
    dpop_signing_alg_values_supported: tuple[str, ...] = ()
    request_object_signing_alg_values_supported: tuple[str, ...] = ()
    authorization_signing_alg_values_supported: tuple[str, ...] = ()
    introspection_signing_alg_values_supported: tuple[str, ...] = ()
    id_token_signing_alg_values_supported: tuple[str, ...] = ("RS256",)
    subject_types_supported: tuple[str, ...] = ("public",)
    claims_supported: tuple[str, ...] = ()
    claims_parameter_supported: bool = False
    acr_values_supported: tuple[str, ...] = ()
    ui_locales_supported: tuple[str, ...] = ()
    require_pushed_authorization_requests: bool = False
    require_signed_request_object: bool = False
    tls_client_certificate_bound_access_tokens: bool = False
    mtls_endpoint_aliases: Mapping[str, str] = field(default_factory=dict)
    client_id_metadata_document_supported: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "mtls_endpoint_aliases", MappingProxyType(dict(self.mtls_endpoint_aliases))
        )
        _validate_issuer_shape(self.issuer)
        for name in (
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "pushed_authorization_request_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
            "registration_endpoint",
            "userinfo_endpoint",
            "end_session_endpoint",
            "service_documentation",
        ):
            _require_absolute(name, getattr(self, name))
        for name in (
            "token_endpoint_auth_signing_alg_values_supported",
            "dpop_signing_alg_values_supported",
            "request_object_signing_alg_values_supported",
            "authorization_signing_alg_values_supported",
            "introspection_signing_alg_values_supported",
            "id_token_signing_alg_values_supported",
        ):
            _refuse_none(name, getattr(self, name))
        self._validate_response_modes()
        self._validate_auth_methods()
        if self.require_pushed_authorization_requests and (
            self.pushed_authorization_request_endpoint is None
        ):
            raise ConfigurationError(
                "require_pushed_authorization_requests needs pushed_authorization_request_endpoint"
            )
        if self.require_signed_request_object and not (
            self.request_object_signing_alg_values_supported
        ):
            raise ConfigurationError(
                "require_signed_request_object needs request_object_signing_alg_values_supported"
            )
        for name, url in self.mtls_endpoint_aliases.items():
            if name not in MTLS_ALIASABLE_ENDPOINTS:
                raise ConfigurationError(f"mtls_endpoint_aliases: {name} has no mTLS alias")
            if getattr(self, name) is None:
                raise ConfigurationError(f"mtls_endpoint_aliases: {name} is not configured")
            _require_absolute(f"mtls_endpoint_aliases.{name}", url)

    def _validate_response_modes(self) -> None:
        for mode in self.response_modes_supported:
            if mode not in PLAIN_RESPONSE_MODES and mode not in JARM_RESPONSE_MODES:
                raise ConfigurationError(f"response_modes_supported: unknown mode {mode!r}")
            if mode in JARM_RESPONSE_MODES and not self.authorization_signing_alg_values_supported:
                raise ConfigurationError(
                    f"response_modes_supported: {mode} needs "
                    "authorization_signing_alg_values_supported (JARM)"
                )

    def _validate_auth_methods(self) -> None:
        signed = _SIGNED_ASSERTION_METHODS & set(self.token_endpoint_auth_methods_supported)
        # RFC 8414 §2: the signing algorithms MUST be present with either JWT method.
        if signed and not self.token_endpoint_auth_signing_alg_values_supported:
            raise ConfigurationError(
                "token_endpoint_auth_signing_alg_values_supported is required with "
                + " and ".join(sorted(signed))
            )

    @property
    def jarm_enabled(self) -> bool:
        return bool(self.authorization_signing_alg_values_supported)


def _validate_issuer_shape(issuer: str) -> None:
    parts = urlsplit(issuer)
    if (
        parts.scheme not in ("https", "http")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or "?" in issuer
        or "#" in issuer
    ):
        raise ConfigurationError("issuer: an http(s) URL without query or fragment (RFC 8414 §2)")
    if issuer.endswith("/"):
        raise ConfigurationError("issuer: no trailing slash (clients compare it exactly)")


@dataclass(frozen=True, slots=True)
class ProtectedResourceConfig:
    """What a protected resource accepts, as its RFC 9728 metadata will say it.

    ``bearer_methods_supported`` defaults to the header only (DESIGN.md D2: the query method
    is never accepted, the form-body method is off unless configured).
    """

    resource: str
    authorization_servers: tuple[str, ...] = ()
    jwks_uri: str | None = None
    scopes_supported: tuple[str, ...] = ()
    bearer_methods_supported: tuple[str, ...] = ("header",)
    resource_name: str | None = None
    resource_documentation: str | None = None
    resource_policy_uri: str | None = None
    resource_tos_uri: str | None = None
    tls_client_certificate_bound_access_tokens: bool = False
    dpop_signing_alg_values_supported: tuple[str, ...] = ()
    dpop_bound_access_tokens_required: bool = False

    def __post_init__(self) -> None:
        parts = urlsplit(self.resource)
        if parts.scheme not in ("https", "http") or not parts.netloc or "#" in self.resource:
            raise ConfigurationError("resource: an absolute http(s) URI without fragment")
        for method in self.bearer_methods_supported:
            if method == "query":
                raise ConfigurationError(
                    "bearer_methods_supported: the query method is never accepted (RFC 9700 §4.3.2)"
                )
            if method not in ("header", "body"):
                raise ConfigurationError(f"bearer_methods_supported: unknown method {method!r}")
        _refuse_none("dpop_signing_alg_values_supported", self.dpop_signing_alg_values_supported)
        if self.dpop_bound_access_tokens_required and not self.dpop_signing_alg_values_supported:
            raise ConfigurationError(
                "dpop_bound_access_tokens_required needs dpop_signing_alg_values_supported"
            )
        for name in (
            "jwks_uri",
            "resource_documentation",
            "resource_policy_uri",
            "resource_tos_uri",
        ):
            _require_absolute(name, getattr(self, name))
        for issuer in self.authorization_servers:
            _validate_issuer_shape(issuer)


# -- builders -------------------------------------------------------------------------------


def authorization_server_metadata(config: AuthorizationServerConfig) -> AuthorizationServerMetadata:
    """The RFC 8414 §2 document for ``config``.

    >>> doc = authorization_server_metadata(AuthorizationServerConfig(
    ...     issuer="https://as.example", authorization_endpoint="https://as.example/authorize",
    ...     token_endpoint="https://as.example/token"))
    >>> doc["code_challenge_methods_supported"]
    ['S256']
    >>> doc["authorization_response_iss_parameter_supported"]
    True
    """
    doc: AuthorizationServerMetadata = {
        "issuer": config.issuer,
        "response_types_supported": ["code"],
    }
    if config.authorization_endpoint is not None:
        doc["authorization_endpoint"] = config.authorization_endpoint
    if config.token_endpoint is not None:
        doc["token_endpoint"] = config.token_endpoint
    if config.jwks_uri is not None:
        doc["jwks_uri"] = config.jwks_uri
    if config.pushed_authorization_request_endpoint is not None:
        doc["pushed_authorization_request_endpoint"] = config.pushed_authorization_request_endpoint
    if config.registration_endpoint is not None:
        doc["registration_endpoint"] = config.registration_endpoint
    if config.revocation_endpoint is not None:
        doc["revocation_endpoint"] = config.revocation_endpoint
    if config.introspection_endpoint is not None:
        doc["introspection_endpoint"] = config.introspection_endpoint
    if config.userinfo_endpoint is not None:
        doc["userinfo_endpoint"] = config.userinfo_endpoint
    if config.end_session_endpoint is not None:
        doc["end_session_endpoint"] = config.end_session_endpoint
    if config.service_documentation is not None:
        doc["service_documentation"] = config.service_documentation
    if config.scopes_supported:
        doc["scopes_supported"] = list(config.scopes_supported)
    doc["response_modes_supported"] = list(config.response_modes_supported)
    doc["grant_types_supported"] = list(config.grant_types_supported)
    doc["code_challenge_methods_supported"] = ["S256"]
    doc["authorization_response_iss_parameter_supported"] = True

    client_auth = _client_auth_members(config)
    doc["token_endpoint_auth_methods_supported"] = client_auth[0]
    if client_auth[1]:
        doc["token_endpoint_auth_signing_alg_values_supported"] = client_auth[1]
    # Revocation and introspection authenticate clients with the same code and policy.
    if config.revocation_endpoint is not None:
        doc["revocation_endpoint_auth_methods_supported"] = client_auth[0]
        if client_auth[1]:
            doc["revocation_endpoint_auth_signing_alg_values_supported"] = client_auth[1]
    if config.introspection_endpoint is not None:
        doc["introspection_endpoint_auth_methods_supported"] = [
            m for m in client_auth[0] if m != "none"
        ]
        if client_auth[1]:
            doc["introspection_endpoint_auth_signing_alg_values_supported"] = client_auth[1]
        if config.introspection_signing_alg_values_supported:
            doc["introspection_signing_alg_values_supported"] = list(
                config.introspection_signing_alg_values_supported
            )

    if config.pushed_authorization_request_endpoint is not None:
        doc["require_pushed_authorization_requests"] = config.require_pushed_authorization_requests
    doc["request_parameter_supported"] = bool(config.request_object_signing_alg_values_supported)
    doc["request_uri_parameter_supported"] = False
    if config.request_object_signing_alg_values_supported:
        doc["request_object_signing_alg_values_supported"] = list(
            config.request_object_signing_alg_values_supported
        )
        doc["require_signed_request_object"] = config.require_signed_request_object
    if config.authorization_signing_alg_values_supported:
        doc["authorization_signing_alg_values_supported"] = list(
            config.authorization_signing_alg_values_supported
        )
    if config.dpop_signing_alg_values_supported:
        doc["dpop_signing_alg_values_supported"] = list(config.dpop_signing_alg_values_supported)
    if config.tls_client_certificate_bound_access_tokens:
        doc["tls_client_certificate_bound_access_tokens"] = True
    if config.mtls_endpoint_aliases:
        doc["mtls_endpoint_aliases"] = dict(config.mtls_endpoint_aliases)
    if config.client_id_metadata_document_supported:
        doc["client_id_metadata_document_supported"] = True
    if config.claims_supported:
        doc["claims_supported"] = list(config.claims_supported)
    if config.claims_parameter_supported:
        doc["claims_parameter_supported"] = True
    if config.acr_values_supported:
        doc["acr_values_supported"] = list(config.acr_values_supported)
    if config.ui_locales_supported:
        doc["ui_locales_supported"] = list(config.ui_locales_supported)
    return doc


def _client_auth_members(config: AuthorizationServerConfig) -> tuple[list[str], list[str]]:
    methods = list(config.token_endpoint_auth_methods_supported)
    algs: list[str] = []
    if _SIGNED_ASSERTION_METHODS & set(methods):
        algs = list(config.token_endpoint_auth_signing_alg_values_supported)
    return methods, algs


def openid_configuration(config: AuthorizationServerConfig) -> OpenIDProviderMetadata:
    """The OpenID Connect Discovery 1.0 §3 document for ``config``.

    OpenID requires ``jwks_uri``, the ``openid`` scope, ``subject_types_supported`` and an
    ``id_token_signing_alg_values_supported`` that includes ``RS256`` (OIDC Core §15.1);
    a configuration without them raises :class:`ConfigurationError`.
    """
    if config.jwks_uri is None:
        raise ConfigurationError("OpenID Connect discovery needs jwks_uri")
    if "openid" not in config.scopes_supported:
        raise ConfigurationError("OpenID Connect discovery needs the openid scope")
    if "RS256" not in config.id_token_signing_alg_values_supported:
        raise ConfigurationError(
            "id_token_signing_alg_values_supported must include RS256 (OIDC Core §15.1)"
        )
    if not config.subject_types_supported:
        raise ConfigurationError("OpenID Connect discovery needs subject_types_supported")
    base = authorization_server_metadata(config)
    doc: OpenIDProviderMetadata = {
        **base,
        "subject_types_supported": list(config.subject_types_supported),
        "id_token_signing_alg_values_supported": list(config.id_token_signing_alg_values_supported),
    }
    return doc


def protected_resource_metadata(config: ProtectedResourceConfig) -> ProtectedResourceMetadata:
    """The RFC 9728 §2 document for ``config``.

    ``offline_access`` is left out of ``scopes_supported``: a resource does not need it, and
    MCP clients would otherwise request it (MCP SEP-2207); refresh tokens are the
    authorization server's decision.
    """
    doc: ProtectedResourceMetadata = {"resource": config.resource}
    if config.authorization_servers:
        doc["authorization_servers"] = list(config.authorization_servers)
    if config.jwks_uri is not None:
        doc["jwks_uri"] = config.jwks_uri
    scopes = [s for s in config.scopes_supported if s != "offline_access"]
    if scopes:
        doc["scopes_supported"] = scopes
    doc["bearer_methods_supported"] = list(config.bearer_methods_supported)
    if config.resource_name is not None:
        doc["resource_name"] = config.resource_name
    if config.resource_documentation is not None:
        doc["resource_documentation"] = config.resource_documentation
    if config.resource_policy_uri is not None:
        doc["resource_policy_uri"] = config.resource_policy_uri
    if config.resource_tos_uri is not None:
        doc["resource_tos_uri"] = config.resource_tos_uri
    if config.tls_client_certificate_bound_access_tokens:
        doc["tls_client_certificate_bound_access_tokens"] = True
    if config.dpop_signing_alg_values_supported:
        doc["dpop_signing_alg_values_supported"] = list(config.dpop_signing_alg_values_supported)
        doc["dpop_bound_access_tokens_required"] = config.dpop_bound_access_tokens_required
    return doc


# -- well-known URLs ------------------------------------------------------------------------


def well_known_url(identifier: str, suffix: str) -> str:
    """Insert ``/.well-known/{suffix}`` between the host and the path (and query) of
    ``identifier`` (RFC 8414 §3.1, RFC 9728 §3.1); a terminating slash after the host is
    removed first.

    >>> well_known_url("https://as.example/tenant", "oauth-authorization-server")
    'https://as.example/.well-known/oauth-authorization-server/tenant'
    >>> well_known_url("https://as.example/", "oauth-authorization-server")
    'https://as.example/.well-known/oauth-authorization-server'
    """
    parts = urlsplit(identifier)
    if not parts.scheme or not parts.netloc or parts.fragment or "#" in identifier:
        raise ValueError("an absolute URL without fragment")
    path = parts.path if parts.path != "/" else ""
    return urlunsplit((parts.scheme, parts.netloc, f"/.well-known/{suffix}{path}", parts.query, ""))


def authorization_server_metadata_url(issuer: str) -> str:
    """Where RFC 8414 metadata for ``issuer`` is served (path-inserted, §3.1)."""
    return well_known_url(issuer, AUTHORIZATION_SERVER_WELL_KNOWN)


def openid_configuration_url(issuer: str) -> str:
    """Where OpenID Provider metadata for ``issuer`` is served: the issuer with
    ``/.well-known/openid-configuration`` appended (OIDC Discovery §4)."""
    return issuer.rstrip("/") + "/.well-known/" + OPENID_CONFIGURATION_WELL_KNOWN


def openid_configuration_path_inserted_url(issuer: str) -> str:
    """The path-inserted form of the OpenID location (RFC 8414 §5 compatibility), which MCP
    clients try second for an issuer with a path."""
    return well_known_url(issuer, OPENID_CONFIGURATION_WELL_KNOWN)


def protected_resource_metadata_url(resource: str) -> str:
    """Where RFC 9728 metadata for ``resource`` is served (path-inserted, §3.1)."""
    return well_known_url(resource, PROTECTED_RESOURCE_WELL_KNOWN)


def metadata_urls(issuer: str, *, openid: bool) -> tuple[str, ...]:
    """Every URL an issuer's metadata should answer at, without duplicates: the RFC 8414
    location, and with ``openid`` the appended and path-inserted OpenID locations (equal
    for an issuer without a path)."""
    urls = [authorization_server_metadata_url(issuer)]
    if openid:
        urls.append(openid_configuration_url(issuer))
        urls.append(openid_configuration_path_inserted_url(issuer))
    return tuple(dict.fromkeys(urls))
