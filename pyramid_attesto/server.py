"""The authorization server of one Pyramid application: which endpoints are mounted, at which
URLs, and the discovery documents that advertise exactly those (DESIGN.md rule 6).

Built once by the deferred action of ``includeme`` from the parsed settings and the
keystore, and kept in the registry (:func:`get_server`).

Endpoint URLs are the issuer's origin (scheme, host and port) followed by the route prefix
and the endpoint's path: ``https://id.example`` with the default prefix serves its token
endpoint at ``https://id.example/oauth/token``. The application is expected at the root of
that origin (a reverse proxy may forward to it; the canonical URL comes from the issuer,
never from the ``Host`` header, DESIGN.md rule 1).

Discovery (RFC 8414 §3, OpenID Connect Discovery 1.0 §4, DESIGN.md D3) is served at the
root whatever the route prefix:

- ``/.well-known/oauth-authorization-server`` followed by the issuer's path (RFC 8414 §3.1,
  path-inserted);
- when ``openid`` is in ``attesto.scopes_supported``: ``{issuer path}/.well-known/
  openid-configuration`` (appended, OIDC Discovery §4.1) and its path-inserted form, which
  MCP clients try as well.

Each answers ``200`` directly (clients do not follow redirects for metadata); any other
path under those names is a ``404``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from zope.interface import Interface

from .core.errors import ConfigurationError
from .core.keys import Keystore
from .core.metadata import (
    AuthorizationServerConfig,
    AuthorizationServerMetadata,
    OpenIDProviderMetadata,
    authorization_server_metadata,
    authorization_server_metadata_url,
    openid_configuration,
    openid_configuration_path_inserted_url,
    openid_configuration_url,
)
from .hostpolicy import HostPolicy
from .settings import AttestoSettings
from .storefactory import StoreFactory

__all__ = [
    "ENDPOINTS",
    "AuthorizationServer",
    "Endpoint",
    "IAuthorizationServer",
    "MetadataKind",
    "build_server",
    "get_server",
]

MetadataKind = Literal["oauth", "openid"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One protocol endpoint: route ``attesto.<name>`` at ``{prefix}{path}``."""

    name: str
    path: str
    member: str
    """Its RFC 8414 metadata member (``token_endpoint``)."""
    view: str
    """The dotted name of its view callable."""


ENDPOINTS: tuple[Endpoint, ...] = ()
"""The endpoints this version mounts. Metadata advertises exactly these."""

GRANT_TYPES: tuple[str, ...] = ()
"""The grant types the token endpoint serves (advertised as ``grant_types_supported``)."""


class IAuthorizationServer(Interface):  # type: ignore[misc]
    """Registry key of the :class:`AuthorizationServer`."""


@dataclass(frozen=True, slots=True)
class AuthorizationServer:
    """The mounted authorization server: endpoint URLs and discovery documents."""

    issuer: str
    route_prefix: str
    endpoint_urls: Mapping[str, str]
    metadata: AuthorizationServerMetadata
    openid_metadata: OpenIDProviderMetadata | None
    metadata_paths: Mapping[str, MetadataKind]
    """The request paths at which a discovery document is served, and which one."""
    host: HostPolicy
    stores: StoreFactory
    """Builds a request's stores (``request.attesto_stores``)."""

    def document(self, path: str) -> AuthorizationServerMetadata | None:
        """The discovery document served at ``path`` (``None``: not one of ours)."""
        kind = self.metadata_paths.get(path)
        if kind == "oauth":
            return self.metadata
        if kind == "openid":
            return self.openid_metadata
        return None


def get_server(registry: Any) -> AuthorizationServer:
    """The :class:`AuthorizationServer` of ``registry``."""
    server = registry.queryUtility(IAuthorizationServer)
    if server is None:
        raise ConfigurationError(
            'pyramid_attesto is not configured: config.include("pyramid_attesto")'
        )
    assert isinstance(server, AuthorizationServer)
    return server


def _origin(issuer: str) -> str:
    parts = urlsplit(issuer)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _path(url: str) -> str:
    return urlsplit(url).path


def build_server(
    settings: AttestoSettings,
    keystore: Keystore,
    *,
    route_prefix: str,
    host: HostPolicy,
    stores: StoreFactory,
    endpoints: tuple[Endpoint, ...] = ENDPOINTS,
    grant_types: tuple[str, ...] = GRANT_TYPES,
    auth_methods: tuple[str, ...] = (),
    auth_signing_algs: tuple[str, ...] = (),
) -> AuthorizationServer:
    """Compute the endpoint URLs and the discovery documents of the mounted server.

    ``auth_methods`` are the client authentication methods the endpoints enforce (empty
    when no endpoint authenticates clients yet).
    """
    origin = _origin(settings.issuer)
    urls = {e.name: f"{origin}{route_prefix}{e.path}" for e in endpoints}
    members: dict[str, Any] = {e.member: urls[e.name] for e in endpoints}
    openid = "openid" in settings.scopes_supported
    config = AuthorizationServerConfig(
        issuer=settings.issuer,
        jwks_uri=f"{origin}/.well-known/jwks.json",
        scopes_supported=settings.scopes_supported,
        response_modes_supported=("query",),
        grant_types_supported=grant_types,
        token_endpoint_auth_methods_supported=auth_methods,
        token_endpoint_auth_signing_alg_values_supported=auth_signing_algs,
        **members,
    )
    metadata = authorization_server_metadata(config)
    paths: dict[str, MetadataKind] = {
        _path(authorization_server_metadata_url(settings.issuer)): "oauth"
    }
    openid_metadata: OpenIDProviderMetadata | None = None
    if openid:
        if "RS256" not in keystore.algorithms:
            raise ConfigurationError(
                "attesto.keystore: the openid scope needs an RS256 key for ID tokens "
                "(OIDC Core §15.1)"
            )
        openid_metadata = openid_configuration(config)
        for url in (
            openid_configuration_url(settings.issuer),
            openid_configuration_path_inserted_url(settings.issuer),
        ):
            paths.setdefault(_path(url), "openid")
    return AuthorizationServer(
        issuer=settings.issuer,
        route_prefix=route_prefix,
        endpoint_urls=MappingProxyType(urls),
        metadata=metadata,
        openid_metadata=openid_metadata,
        metadata_paths=MappingProxyType(paths),
        host=host,
        stores=stores,
    )
