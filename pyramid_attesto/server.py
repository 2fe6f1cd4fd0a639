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

With ``attesto.mtls.base_url`` (and ``attesto.mtls.enabled``), the metadata also names the
endpoints that read client certificates (token, PAR, revocation, introspection, UserInfo)
under that URL as ``mtls_endpoint_aliases`` (RFC 8705 §5): the same routes, reached through
the host that asks for a certificate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

from pyramid.path import DottedNameResolver
from zope.interface import Interface

from .challenges import ChallengeOptions
from .core.authorization import AuthorizationPolicy, AuthorizationRequestValidator
from .core.authorize import AuthorizationService
from .core.cimd import (
    MetadataDocumentCache,
    MetadataDocumentClientStore,
    MetadataDocumentPolicy,
    MetadataDocumentResolver,
)
from .core.client_auth import ClientAuthPolicy
from .core.clients import AUTH_METHODS, MTLS_METHODS, AuthMethod, Client, ClientStore
from .core.clock import Clock
from .core.dpop import DEFAULT_ALGORITHMS, DPoPPolicy, DPoPVerifier, HMACNonces, NonceSource
from .core.errors import ConfigurationError
from .core.grants import EXTENSION_GRANT_TYPES, GRANT_TYPES, TokenPolicy, TokenService
from .core.host import ClaimsProvider, ConsentPolicy, Event
from .core.idtoken import IDTokenMinter
from .core.introspection import IntrospectionJWTEncoder
from .core.jarm import JARMEncoder
from .core.jwt_bearer import GRANT_TYPE as JWT_BEARER
from .core.jwt_bearer import JWTBearerConfig, RemoteIssuerKeys, inline_issuer_keys
from .core.keys import SIGNING_ALGORITHMS, Keystore
from .core.metadata import (
    JARM_RESPONSE_MODES,
    MTLS_ALIASABLE_ENDPOINTS,
    AuthorizationServerConfig,
    AuthorizationServerMetadata,
    OpenIDProviderMetadata,
    authorization_server_metadata,
    authorization_server_metadata_url,
    openid_configuration,
    openid_configuration_path_inserted_url,
    openid_configuration_url,
)
from .core.mtls import match_client_certificate
from .core.outbound import DocumentFetcher, RemoteClientKeys, RemoteKeySets
from .core.registration import (
    REGISTRABLE_AUTH_METHODS,
    HashedInitialAccessTokens,
    RegisteredClientStore,
    RegistrationPolicy,
    RegistrationService,
)
from .core.request_objects import RequestObjectPolicy
from .core.revocation import TokenAdministration
from .core.scopes import ScopeCatalog
from .core.token_exchange import ACCESS_TOKEN_TYPE, OwnAccessTokens, TokenExchangeConfig
from .core.token_exchange import GRANT_TYPE as TOKEN_EXCHANGE
from .core.tokens import AccessTokenMinter, AccessTokenVerifier
from .fetch import GuardedFetcher
from .hostpolicy import HostPolicy
from .request import RequestAdapter
from .settings import AttestoSettings
from .storefactory import StoreFactory

__all__ = [
    "CLIENT_ENDPOINTS",
    "ENDPOINTS",
    "AuthorizationServer",
    "AuthorizeEndpoint",
    "Endpoint",
    "IAuthorizationServer",
    "MetadataKind",
    "TokenEndpoint",
    "UserInfoEndpoint",
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


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "authorize",
        "/authorize",
        "authorization_endpoint",
        "pyramid_attesto.views.authorize.authorize_view",
    ),
    Endpoint(
        "par",
        "/par",
        "pushed_authorization_request_endpoint",
        "pyramid_attesto.views.authorize.par_view",
    ),
    Endpoint("token", "/token", "token_endpoint", "pyramid_attesto.views.token.token_view"),
    Endpoint(
        "revocation",
        "/revoke",
        "revocation_endpoint",
        "pyramid_attesto.views.token.revocation_view",
    ),
    Endpoint(
        "userinfo",
        "/userinfo",
        "userinfo_endpoint",
        "pyramid_attesto.views.userinfo.userinfo_view",
    ),
    Endpoint(
        "introspection",
        "/introspect",
        "introspection_endpoint",
        "pyramid_attesto.views.token.introspection_view",
    ),
    Endpoint(
        "registration",
        "/register",
        "registration_endpoint",
        "pyramid_attesto.views.registration.registration_view",
    ),
)
"""The endpoints this version mounts. Each is enabled (served and advertised) only when what
it needs is configured: the client endpoints need ``attesto.client_store``."""

EXTRA_ROUTES: tuple[tuple[str, str, str], ...] = (
    (
        "registration_client",
        # Any rest of the path, slashes too: a URL-shaped client_id (a metadata document's)
        # is answered 401 as every client without a registration is (RFC 7592 §2), not 404.
        "/register/{client_id:.+}",
        "pyramid_attesto.views.registration.registration_client_view",
    ),
)
"""Routes that are not endpoints of their own: ``(name, path, view)`` (RFC 7592 §2, the
client configuration endpoint of each registered client)."""

CLIENT_ENDPOINTS = frozenset({"token", "revocation", "introspection", "par", "authorize"})
"""Endpoints that authenticate or load clients (enabled with ``attesto.client_store``)."""
CONSENT_ENDPOINTS = frozenset({"authorize", "par"})
"""Endpoints that also need ``attesto.consent_policy`` (someone must log the user in)."""


class IAuthorizationServer(Interface):  # type: ignore[misc]
    """Registry key of the :class:`AuthorizationServer`."""


@dataclass(frozen=True, slots=True)
class TokenEndpoint:
    """What the token endpoint (and the other client endpoints) run with."""

    client_store: ClientStore
    client_auth: ClientAuthPolicy
    service: TokenService
    dpop: DPoPVerifier | None
    nonces: NonceSource | None
    admin: TokenAdministration
    """Revocation (RFC 7009) and introspection (RFC 7662)."""
    introspection_jwt: IntrospectionJWTEncoder


@dataclass(frozen=True, slots=True)
class AuthorizeEndpoint:
    """What the authorization and PAR endpoints run with."""

    service: AuthorizationService
    consent: ConsentPolicy


@dataclass(frozen=True, slots=True)
class UserInfoEndpoint:
    """What the UserInfo endpoint runs with."""

    tokens: AccessTokenVerifier
    dpop: DPoPVerifier
    claims: ClaimsProvider
    challenge: ChallengeOptions


@dataclass(frozen=True, slots=True)
class AuthorizationServer:
    """The mounted authorization server: endpoint URLs and discovery documents."""

    issuer: str
    route_prefix: str
    endpoint_urls: Mapping[str, str]
    """The URL of every enabled endpoint, by name."""
    metadata: AuthorizationServerMetadata
    openid_metadata: OpenIDProviderMetadata | None
    metadata_paths: Mapping[str, MetadataKind]
    """The request paths at which a discovery document is served, and which one."""
    host: HostPolicy
    stores: StoreFactory
    """Builds a request's stores (``request.attesto_stores``)."""
    settings: AttestoSettings
    clock: Clock
    adapter: RequestAdapter
    """Scheme, canonical URL and client certificate of a request (rule 1, D14, D23)."""
    emit: Callable[[Event], None]
    """Hands an :class:`~pyramid_attesto.core.host.Event` to the sink and subscribers."""
    token: TokenEndpoint | None = None
    """``None`` when no client store is configured (the client endpoints answer 404)."""
    authorize: AuthorizeEndpoint | None = None
    """``None`` without a client store and a consent policy (authorize and PAR answer 404)."""
    userinfo: UserInfoEndpoint | None = None
    """``None`` without a claims provider and the ``openid`` scope."""
    registration: RegistrationService | None = None
    """``None`` unless ``attesto.registration.enabled``."""
    mtls_urls: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The RFC 8705 §5 alias URL of an endpoint, by name (``attesto.mtls.base_url``)."""

    def enabled(self, name: str) -> bool:
        return name in self.endpoint_urls

    def request_urls(self, name: str) -> tuple[str, ...]:
        """The URLs a request to endpoint ``name`` may have been sent to: its URL and its
        mTLS alias (what a DPoP proof's ``htu`` may name, RFC 9449 §4.3)."""
        alias = self.mtls_urls.get(name)
        url = self.endpoint_urls[name]
        return (url,) if alias is None else (url, alias)

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


def _enabled(
    endpoints: Sequence[Endpoint], host: HostPolicy, settings: AttestoSettings
) -> list[Endpoint]:
    def on(endpoint: Endpoint) -> bool:
        if endpoint.name == "userinfo":
            return host.claims_provider is not None and "openid" in settings.scopes_supported
        if endpoint.name == "registration":
            return settings.registration_enabled
        if endpoint.name in CLIENT_ENDPOINTS and host.client_store is None:
            return False
        return not (endpoint.name in CONSENT_ENDPOINTS and host.consent_policy is None)

    return [e for e in endpoints if on(e)]


def _authorize_endpoint(
    settings: AttestoSettings,
    host: HostPolicy,
    clock: Clock,
    authorize_url: str,
    emit: Callable[[Event], None],
    keystore: Keystore,
    key_sets: RemoteKeySets,
) -> AuthorizeEndpoint:
    assert host.client_store is not None
    assert host.consent_policy is not None
    resources = frozenset(settings.resources) | (
        {settings.default_resource} if settings.default_resource else set()
    )
    jarm_algs = _jarm_algorithms(settings, keystore)
    policy = AuthorizationPolicy(
        issuer=settings.issuer,
        scopes=ScopeCatalog.of(settings.scopes_supported),
        response_modes=frozenset(settings.response_modes),
        **_resource_allow_list(resources, host),
        require_pushed_authorization_requests=settings.require_pushed_authorization_requests,
        request_objects=request_object_policy(settings),
        require_signed_request_object=settings.require_signed_request_object,
    )
    validator = AuthorizationRequestValidator(
        policy,
        clients=host.client_store,
        clock=clock,
        # Keys registered by reference (jwks_uri) come through the outbound-fetch guard.
        jwks=RemoteClientKeys(key_sets),
    )
    service = AuthorizationService(
        validator,
        issuer=settings.issuer,
        authorize_url=authorize_url,
        code_ttl=settings.code_ttl,
        pending_ttl=settings.par_ttl,
        clock=clock,
        emit=emit,
        scope_policy=host.scope_policy,
        jarm=JARMEncoder(keystore, issuer=settings.issuer, clock=clock) if jarm_algs else None,
        jarm_algorithms=frozenset(jarm_algs),
    )
    return AuthorizeEndpoint(service=service, consent=host.consent_policy)


def _resource_allow_list(resources: frozenset[str], host: HostPolicy) -> dict[str, Any]:
    """The authorization endpoint's RFC 8707 allow-list: ``attesto.resources``, narrowed per
    client by the host's :class:`~pyramid_attesto.core.issuance.ClientResourcePolicy`."""
    narrowing = host.client_resource_policy
    if narrowing is None:
        return {"resources": resources}

    def allowed(client: Client, resource: str) -> bool:
        return resource in resources and narrowing.allow_resource(client, resource) is True

    return {"resources": frozenset(), "resource_allowed": allowed}


# -- JAR, JARM and the mTLS aliases (issue 6 items 1, 2, 7) -------------------------------


def request_object_policy(settings: AttestoSettings) -> RequestObjectPolicy | None:
    """``attesto.request_object_policy``: ``generic``, ``fapi2_message_signing`` or the
    dotted name of a :class:`~.core.request_objects.RequestObjectPolicy` (or of a callable
    returning one); ``None`` when unset."""
    name = settings.request_object_policy
    if name is None:
        if settings.require_signed_request_object:
            raise ConfigurationError(
                "attesto.require_signed_request_object needs attesto.request_object_policy"
            )
        return None
    if name == "generic":
        return RequestObjectPolicy.generic()
    if name == "fapi2_message_signing":
        return RequestObjectPolicy.fapi2_message_signing()
    try:
        found = DottedNameResolver().resolve(name)
        if callable(found) and not isinstance(found, RequestObjectPolicy):
            found = found()
    except (ImportError, ValueError, AttributeError, TypeError, ConfigurationError) as exc:
        raise ConfigurationError(f"attesto.request_object_policy: {name!r}: {exc}") from None
    if not isinstance(found, RequestObjectPolicy):
        raise ConfigurationError(
            "attesto.request_object_policy: generic, fapi2_message_signing or the dotted name "
            f"of a RequestObjectPolicy ({name!r} is not one)"
        )
    return found


def _jarm_algorithms(settings: AttestoSettings, keystore: Keystore) -> tuple[str, ...]:
    """The algorithms JARM responses are signed with; empty when no JARM mode is served.
    DESIGN.md D24: each needs an active key, so an advertised algorithm is one we sign with."""
    if not JARM_RESPONSE_MODES & set(settings.response_modes):
        return ()
    available = [alg for alg in SIGNING_ALGORITHMS if alg in keystore.algorithms]
    if not settings.jarm_algorithms:
        if not available:
            raise ConfigurationError(
                "attesto.response_modes: the JARM modes need a signing key in attesto.keystore"
            )
        return tuple(available)
    for alg in settings.jarm_algorithms:
        if alg not in available:
            raise ConfigurationError(
                f"attesto.jarm.algorithms: {alg} has no active key in attesto.keystore "
                f"(JARM can sign with {', '.join(available) or 'nothing'})"
            )
    return tuple(dict.fromkeys(settings.jarm_algorithms))


def _mtls_aliases(
    settings: AttestoSettings, route_prefix: str, enabled: Sequence[Endpoint]
) -> dict[str, str]:
    """RFC 8705 §5: the endpoints that read a client certificate, at ``attesto.mtls.base_url``
    (the same routes, reached through the host that asks for a certificate)."""
    if settings.mtls_base_url is None:
        return {}
    if not settings.mtls_enabled:
        raise ConfigurationError("attesto.mtls.base_url needs attesto.mtls.enabled")
    base = settings.mtls_base_url.rstrip("/")
    if settings.require_https and not base.startswith("https://"):
        raise ConfigurationError("attesto.mtls.base_url: must be https (mutual TLS)")
    return {
        e.member: f"{base}{route_prefix}{e.path}"
        for e in enabled
        if e.member in MTLS_ALIASABLE_ENDPOINTS and e.name != "registration"
    }


def _extension_grants(settings: AttestoSettings) -> tuple[str, ...]:
    """The extension grants that are configured (served only then)."""
    found = []
    if settings.token_exchange_enabled:
        found.append(TOKEN_EXCHANGE)
    if settings.jwt_bearer_issuers:
        found.append(JWT_BEARER)
    return tuple(found)


def _grant_types(settings: AttestoSettings, endpoints: Sequence[Endpoint]) -> tuple[str, ...]:
    names = {e.name for e in endpoints}
    extensions = _extension_grants(settings)
    if settings.grant_types_supported is None:
        codes = ("authorization_code", "refresh_token") if "authorize" in names else ()
        return (*codes, "client_credentials", *extensions)
    served = (*GRANT_TYPES, *extensions)
    unknown = sorted(set(settings.grant_types_supported) - set(served))
    if unknown:
        hint = ""
        if unknown[0] in EXTENSION_GRANT_TYPES:
            hint = " (token exchange needs attesto.token_exchange.enabled, jwt-bearer needs "
            hint += "attesto.jwt_bearer.issuers)"
        raise ConfigurationError(
            f"attesto.grant_types_supported: {unknown[0]} is not served (one of "
            f"{', '.join(served)}){hint}"
        )
    return tuple(settings.grant_types_supported)


def _client_auth(settings: AttestoSettings, key_sets: RemoteKeySets) -> ClientAuthPolicy:
    methods = set(settings.token_endpoint_auth_methods)
    unknown = sorted(methods - AUTH_METHODS)
    if unknown:
        raise ConfigurationError(
            f"attesto.token_endpoint_auth_methods: unknown method {unknown[0]}"
        )
    if methods & MTLS_METHODS and not settings.mtls_enabled:
        # DESIGN.md D24: mTLS needs a certificate source.
        raise ConfigurationError(
            "attesto.token_endpoint_auth_methods: the mTLS methods need attesto.mtls.enabled"
        )
    try:
        return ClientAuthPolicy(
            methods=frozenset(cast("set[AuthMethod]", methods)),
            certificate_matcher=match_client_certificate if methods & MTLS_METHODS else None,
            # Keys registered by reference (jwks_uri) come through the outbound-fetch guard.
            jwks_provider=RemoteClientKeys(key_sets),
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"attesto.token_endpoint_auth_methods: {exc}") from None


def _dpop(
    settings: AttestoSettings, clock: Clock
) -> tuple[DPoPVerifier | None, NonceSource | None]:
    if not settings.dpop_enabled:
        return None, None
    try:
        verifier = DPoPVerifier(
            clock=clock,
            policy=DPoPPolicy(algorithms=settings.dpop_algorithms or DEFAULT_ALGORITHMS),
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"attesto.dpop.algorithms: {exc}") from None
    if settings.dpop_nonce == "off":
        return verifier, None
    if not settings.dpop_nonce_secret:
        return verifier, HMACNonces.generate(clock=clock)
    try:
        return verifier, HMACNonces(settings.dpop_nonce_secret, clock=clock)
    except ConfigurationError as exc:
        raise ConfigurationError(f"attesto.dpop.nonce_secret: {exc}") from None


def _grace(settings: AttestoSettings) -> int:
    # DESIGN.md D12, D24: the grace window returns the stored successor, kept encrypted.
    if settings.refresh_grace_ttl and not settings.refresh_successor_secret:
        raise ConfigurationError("attesto.refresh_grace_ttl needs attesto.refresh_successor_secret")
    return settings.refresh_grace_ttl


def _token_endpoint(
    settings: AttestoSettings,
    keystore: Keystore,
    host: HostPolicy,
    clock: Clock,
    grant_types: tuple[str, ...],
    emit: Callable[[Event], None],
    key_sets: RemoteKeySets,
) -> TokenEndpoint | None:
    if host.client_store is None:
        return None
    for resource in (*settings.resources, settings.default_resource):
        if resource is not None and ("#" in resource or "://" not in resource):
            raise ConfigurationError(f"attesto.resources: {resource!r} is not an absolute URI")
    policy = TokenPolicy(
        issuer=settings.issuer,
        grant_types=frozenset(grant_types),
        catalog=ScopeCatalog.of(settings.scopes_supported),
        resources=frozenset(settings.resources),
        default_resource=settings.default_resource,
        access_token_ttl=settings.access_token_ttl,
        refresh_token_ttl=settings.refresh_token_ttl,
        refresh_family_ttl=settings.refresh_family_ttl,
        refresh_grace=_grace(settings),
    )
    id_tokens = None
    if "openid" in settings.scopes_supported:
        id_tokens = IDTokenMinter(keystore, issuer=settings.issuer, clock=clock)
    service = TokenService(
        policy,
        minter=AccessTokenMinter(
            keystore, issuer=settings.issuer, clock=clock, lifetime=settings.access_token_ttl
        ),
        scope_policy=host.scope_policy,
        clock=clock,
        emit=emit,
        principal_store=host.principal_store,
        id_token_minter=id_tokens,
        claims_provider=host.claims_provider,
        token_exchange=_token_exchange(settings, keystore, host, clock, policy, grant_types),
        jwt_bearer=_jwt_bearer(settings, host, policy, grant_types, key_sets),
        refresh_policy=host.refresh_token_policy,
        client_resource_policy=host.client_resource_policy,
    )
    verifier, nonces = _dpop(settings, clock)
    introspectors = frozenset(settings.introspection_clients)
    client_auth = _client_auth(settings, key_sets)
    admin = TokenAdministration(
        keystore,
        issuer=settings.issuer,
        audiences=policy.allowed_resources,
        clock=clock,
        emit=emit,
        may_introspect=lambda caller, _response: caller.client_id in introspectors,
        client_auth=client_auth,
    )
    return TokenEndpoint(
        admin=admin,
        introspection_jwt=IntrospectionJWTEncoder(keystore, issuer=settings.issuer, clock=clock),
        client_store=host.client_store,
        client_auth=client_auth,
        service=service,
        dpop=verifier,
        nonces=nonces,
    )


# -- registration, metadata documents, token exchange, jwt-bearer --------------------------


def _client_store(
    settings: AttestoSettings,
    host: HostPolicy,
    clock: Clock,
    fetcher: DocumentFetcher,
    cache: MetadataDocumentCache | None = None,
    keystore: Keystore | None = None,
) -> ClientStore | None:
    """The host's clients, then the registered ones, then metadata documents for https
    client_ids: each layer asks the next for what it does not know."""
    clients = host.client_store
    if settings.registration_enabled:
        if host.registration_store is None:
            # DESIGN.md D24: registration on needs a registration store.
            raise ConfigurationError(
                "attesto.registration.enabled needs attesto.registration_store "
                "(a RegistrationStore, or `memory` for one process)"
            )
        clients = RegisteredClientStore(host.registration_store, clock, clients)
    if settings.client_id_metadata_enabled:
        policy = MetadataDocumentPolicy(
            allowed_hosts=frozenset(h.lower() for h in settings.client_id_metadata_allowed_hosts),
            blocked_hosts=frozenset(h.lower() for h in settings.client_id_metadata_blocked_hosts),
            catalog=ScopeCatalog.of(settings.scopes_supported),
        )
        if keystore is not None:
            objects, responses, introspection = _document_algorithms(settings, keystore)
            policy = replace(
                policy,
                request_object_algorithms=objects,
                authorization_signing_algorithms=responses,
                introspection_signing_algorithms=introspection,
            )
        resolver = MetadataDocumentResolver(fetcher, policy, clock=clock, cache=cache)
        clients = MetadataDocumentClientStore(resolver, clients)
    return clients


def _registration(
    settings: AttestoSettings,
    host: HostPolicy,
    clock: Clock,
    urls: Mapping[str, str],
    token: TokenEndpoint | None,
    authorize: AuthorizeEndpoint | None = None,
    emit: Callable[[Event], None] | None = None,
) -> RegistrationService | None:
    if "registration" not in urls:
        return None
    assert host.registration_store is not None  # _client_store
    enabled = set(token.client_auth.methods) if token is not None else set()
    requested = settings.registration_auth_methods
    methods = set(requested) if requested is not None else enabled & REGISTRABLE_AUTH_METHODS
    unknown = sorted(methods - REGISTRABLE_AUTH_METHODS) or sorted(methods - enabled)
    if unknown or not methods:
        raise ConfigurationError(
            "attesto.registration.auth_methods: registered clients may use only methods the "
            f"token endpoint accepts among {', '.join(sorted(REGISTRABLE_AUTH_METHODS))}"
            + (f" (not {unknown[0]})" if unknown else "")
        )
    # Self-registered clients get the user-facing grants only: client_credentials, token
    # exchange and jwt-bearer stay with clients the host registered itself.
    served = frozenset(token.service.policy.grant_types) if token is not None else frozenset()
    objects, responses, introspection = _registrable_algorithms(token, authorize)
    try:
        policy = RegistrationPolicy(
            registration_endpoint=urls["registration"],
            auth_methods=frozenset(cast("set[AuthMethod]", methods)),
            grant_types=served & {"authorization_code", "refresh_token"},
            catalog=ScopeCatalog.of(settings.scopes_supported),
            default_scope=settings.registration_default_scope,
            client_secret_ttl=settings.registration_client_secret_ttl,
            request_object_algorithms=objects,
            authorization_signing_algorithms=responses,
            introspection_signing_algorithms=introspection,
        )
    except ValueError as exc:
        raise ConfigurationError(f"attesto.registration: {exc}") from None
    initial = None
    if settings.registration_initial_access_tokens:
        initial = HashedInitialAccessTokens(settings.registration_initial_access_tokens)
    return RegistrationService(
        policy,
        host.registration_store,
        clock=clock,
        gate=host.registration_gate,
        initial_access_tokens=initial,
        emit=emit,
    )


def _document_algorithms(
    settings: AttestoSettings, keystore: Keystore
) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """What a metadata document may name, as a registration may: the request-object, JARM
    and JWT-introspection algorithms the server enforces."""
    objects = request_object_policy(settings)
    return (
        objects.algorithms if objects is not None else frozenset(),
        frozenset(_jarm_algorithms(settings, keystore)),
        frozenset({keystore.signer().alg}),
    )


def _registrable_algorithms(
    token: TokenEndpoint | None, authorize: AuthorizeEndpoint | None
) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The signing algorithms a registered client may name, exactly those enforced: for
    request objects, JARM responses and JWT introspection responses."""
    objects: frozenset[str] = frozenset()
    responses: frozenset[str] = frozenset()
    introspection: frozenset[str] = frozenset()
    if authorize is not None:
        policy = authorize.service.validator.policy.request_objects
        objects = policy.algorithms if policy is not None else frozenset()
        responses = authorize.service.jarm_algorithms
    if token is not None:
        introspection = frozenset(token.introspection_jwt.keystore.algorithms)
    return objects, responses, introspection


def _token_exchange(
    settings: AttestoSettings,
    keystore: Keystore,
    host: HostPolicy,
    clock: Clock,
    policy: TokenPolicy,
    grant_types: tuple[str, ...],
) -> TokenExchangeConfig | None:
    if TOKEN_EXCHANGE not in grant_types:
        return None
    own = AccessTokenVerifier(
        keystore, issuer=settings.issuer, audience=policy.allowed_resources, clock=clock
    )
    return TokenExchangeConfig(
        issuer=settings.issuer,
        validators={ACCESS_TOKEN_TYPE: OwnAccessTokens(own)},
        catalog=policy.catalog,
        policy=host.exchange_policy,
    )


def _jwt_bearer(
    settings: AttestoSettings,
    host: HostPolicy,
    policy: TokenPolicy,
    grant_types: tuple[str, ...],
    key_sets: RemoteKeySets,
) -> JWTBearerConfig | None:
    if JWT_BEARER not in grant_types:
        return None
    if host.assertion_subject_resolver is None:
        raise ConfigurationError(
            "attesto.jwt_bearer.issuers needs attesto.assertion_subject_resolver (who is the "
            "assertion's subject here?)"
        )
    issuers = {issuer.issuer: issuer for issuer in settings.jwt_bearer_issuers}
    remote = any(issuer.jwks_uri is not None for issuer in issuers.values())
    return JWTBearerConfig(
        issuer=settings.issuer,
        trusted_issuers=issuers,
        subject_resolver=host.assertion_subject_resolver,
        keys=RemoteIssuerKeys(key_sets) if remote else inline_issuer_keys,
        resources=policy.resources,
        default_resource=policy.default_resource,
        catalog=policy.catalog,
        policy=host.assertion_policy,
    )


def build_server(
    settings: AttestoSettings,
    keystore: Keystore,
    *,
    route_prefix: str,
    host: HostPolicy,
    stores: StoreFactory,
    clock: Clock,
    emit: Callable[[Event], None] = lambda event: None,
    endpoints: tuple[Endpoint, ...] = ENDPOINTS,
    fetcher: DocumentFetcher | None = None,
) -> AuthorizationServer:
    """Resolve what the mounted endpoints run with, their URLs and the discovery documents
    that advertise exactly the enabled endpoints and the methods they enforce.

    ``fetcher`` makes the outbound fetches (metadata documents, clients' and issuers'
    ``jwks_uri``);
    default: the :class:`~pyramid_attesto.fetch.GuardedFetcher`."""
    fetcher = fetcher or GuardedFetcher(clock=clock)
    cache = stores.metadata_document_cache() if settings.client_id_metadata_enabled else None
    host = replace(
        host, client_store=_client_store(settings, host, clock, fetcher, cache, keystore)
    )
    enabled = _enabled(endpoints, host, settings)
    grant_types = _grant_types(settings, enabled)
    key_sets = RemoteKeySets(fetcher, clock)
    token = _token_endpoint(settings, keystore, host, clock, grant_types, emit, key_sets)
    origin = _origin(settings.issuer)
    adapter = RequestAdapter(
        default_url=origin,
        public_url=settings.public_url,
        trusted_proxies=settings.trusted_proxies,
    )
    base = settings.public_url.rstrip("/") if settings.public_url else origin
    urls = {e.name: f"{base}{route_prefix}{e.path}" for e in enabled}
    members: dict[str, Any] = {e.member: urls[e.name] for e in enabled}
    auth: dict[str, Any] = {"grant_types_supported": ()}
    if token is not None:
        auth = {
            "grant_types_supported": grant_types,
            "token_endpoint_auth_methods_supported": tuple(
                token.client_auth.token_endpoint_auth_methods_supported
            ),
            "token_endpoint_auth_signing_alg_values_supported": tuple(
                token.client_auth.token_endpoint_auth_signing_alg_values_supported
            ),
        }
        if token.dpop is not None:
            auth["dpop_signing_alg_values_supported"] = token.dpop.policy.algorithms
        if settings.mtls_enabled:
            auth["tls_client_certificate_bound_access_tokens"] = True
        # RFC 9701 §6: the default signer's first, then every other one a client may name.
        default = keystore.signer().alg
        others = [a for a in SIGNING_ALGORITHMS if a in keystore.algorithms and a != default]
        auth["introspection_signing_alg_values_supported"] = (default, *others)
    authorize = None
    if "authorize" in urls:
        authorize = _authorize_endpoint(
            settings, host, clock, urls["authorize"], emit, keystore, key_sets
        )
        auth["require_pushed_authorization_requests"] = (
            settings.require_pushed_authorization_requests
        )
        auth.update(_authorize_members(authorize))
    auth.setdefault("response_modes_supported", ("query",))
    userinfo = None
    if "userinfo" in urls:
        assert host.claims_provider is not None
        dpop_verifier = (token.dpop if token is not None else None) or DPoPVerifier(clock=clock)
        userinfo = UserInfoEndpoint(
            tokens=AccessTokenVerifier(
                keystore, issuer=settings.issuer, audience=settings.issuer, clock=clock
            ),
            dpop=dpop_verifier,
            claims=host.claims_provider,
            challenge=ChallengeOptions(dpop_algs=tuple(dpop_verifier.policy.algorithms)),
        )
    openid = "openid" in settings.scopes_supported
    aliases = _mtls_aliases(settings, route_prefix, enabled)
    config = AuthorizationServerConfig(
        issuer=settings.issuer,
        jwks_uri=f"{origin}/.well-known/jwks.json",
        scopes_supported=settings.scopes_supported,
        client_id_metadata_document_supported=settings.client_id_metadata_enabled,
        mtls_endpoint_aliases=aliases,
        **auth,
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
        settings=settings,
        clock=clock,
        adapter=adapter,
        emit=emit,
        token=token,
        authorize=authorize,
        userinfo=userinfo,
        registration=_registration(settings, host, clock, urls, token, authorize, emit),
        mtls_urls=MappingProxyType(
            {e.name: aliases[e.member] for e in enabled if e.member in aliases}
        ),
    )


def _authorize_members(authorize: AuthorizeEndpoint) -> dict[str, Any]:
    """The metadata of what the authorization endpoint enforces (DESIGN.md rule 6)."""
    validator = authorize.service.validator
    policy = validator.policy
    members: dict[str, Any] = {
        "response_modes_supported": tuple(
            m for m in _RESPONSE_MODE_ORDER if m in policy.response_modes
        ),
    }
    if authorize.service.jarm_algorithms:
        members["authorization_signing_alg_values_supported"] = tuple(
            a for a in SIGNING_ALGORITHMS if a in authorize.service.jarm_algorithms
        )
    if policy.request_objects is not None:
        members["request_object_signing_alg_values_supported"] = tuple(
            policy.request_objects.request_object_signing_alg_values_supported
        )
        members["require_signed_request_object"] = policy.require_signed_request_object
    return members


_RESPONSE_MODE_ORDER = (
    "query",
    "fragment",
    "form_post",
    "jwt",
    "query.jwt",
    "fragment.jwt",
    "form_post.jwt",
)
