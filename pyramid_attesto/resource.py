"""``config.include("pyramid_attesto.resource")``: protect a Pyramid API as an OAuth resource
server, and nothing of the authorization server (DESIGN.md D4).

What the include registers:

- the security policy :class:`~pyramid_attesto.policy.AttestoSecurityPolicy`. A host policy
  already set (``config.set_security_policy``) becomes its ``fallback`` (D1), so the host's
  cookie login and ACL permissions keep working; ``attesto.install_policy = false`` leaves
  the security policy alone (compose it yourself);
- a forbidden view for attesto denials only (predicate ``attesto_denial``, D2), rendering the
  RFC 6750 / RFC 9449 / RFC 9470 challenges; a host forbidden view keeps every other denial;
- the view options ``attesto_scopes=[...]`` (every scope required; a request without a token
  is challenged even when a host fallback policy would allow it), ``attesto_acr_values=[...]``
  and ``attesto_max_age=seconds`` (RFC 9470 step-up);
- protected-resource metadata (RFC 9728 §3) at ``/.well-known/oauth-protected-resource`` and at
  the path-inserted location of each resource, at the root of the application whatever its
  route prefix (D3), with credential-less CORS (D17);
- the directive ``config.set_attesto_resource_stores(replay=..., revoked_access_tokens=...)``.

Settings (``attesto.*``; unknown keys are refused, the key is named in every error):

``issuer`` (required)
    The authorization server's issuer: every token's ``iss`` must equal it.
``resource`` (required)
    This API's canonical resource URI(s), lower-case scheme and host, no fragment. A token's
    ``aud`` must name one (RFC 8707, rule 8); the first is the default.
``keystore`` or ``jwks_uri``
    Where verification keys come from (one is required, unless the authorization server's
    include shares its keystore): a JWK Set or PEM file (public keys suffice), or the
    authorization server's ``jwks_uri``, fetched and cached (:mod:`pyramid_attesto.jwks_client`).
``scopes_supported``
    The scope catalog: advertised in metadata; a permission in it is an OAuth permission.
``public_url``, ``trusted_proxies``, ``require_https``
    How the request's public URL is known (:mod:`pyramid_attesto.request`, rule 1, D23).
``authorization_servers``, ``resource_name``, ``resource_documentation``, ``bearer_methods``
    Metadata and accepted token methods (``header``; ``header body`` adds RFC 6750 §2.2).
``realm``, ``access_token_leeway``, ``revocation_check``
    The challenges' realm; clock skew tolerated (30 s); the access-token denylist check (off).
``dpop.*``
    ``required``: DPoP-bound tokens only (off); ``resource_nonce``: resource-server nonces
    (off) from the shared ``nonce_secret``; ``algorithms``: the proof algorithms;
    ``max_age``: how old a proof may be (60 s).
``replay_store`` (``memory``; with the authorization server's include, its storage)
    ``memory`` for one process, a database URL (``postgresql+psycopg://...``,
    ``sqlite:///...``) for the shared SQL store — each claim in its own short transaction
    (DESIGN.md rule 3's one exception) — or the dotted name of a ``ReplayStore``. Unset in
    an app that is its own authorization server, the AS's memory stores or its
    ``attesto.sqlalchemy.url`` database serve (replays and the denylist).
``principal_loader``, ``token_extractor``
    Dotted names of ``loader(identity) -> principal`` (called lazily, D10) and
    ``extractor(request) -> (scheme, token) | None``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, Final, cast
from urllib.parse import unquote, urlsplit

from pyramid.httpexceptions import HTTPForbidden, HTTPNotFound
from pyramid.interfaces import PHASE1_CONFIG, PHASE2_CONFIG, ISecurityPolicy
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

from .challenges import AttestoDenialPredicate, ChallengeOptions, forbidden_view
from .core.clock import Clock, SystemClock
from .core.dpop import DPoPPolicy, DPoPVerifier, HMACNonces, NonceSource
from .core.errors import ConfigurationError
from .core.keys import Keystore
from .core.metadata import (
    ProtectedResourceConfig,
    protected_resource_metadata,
    protected_resource_metadata_url,
)
from .core.resource import ResourcePolicy, ResourceVerifier
from .core.scopes import ScopeCatalog, is_scope_token
from .core.stores import ReplayStore, RevokedAccessTokenStore
from .core.tokens import AccessTokenVerifier
from .errorhooks import install_response_hooks
from .include import _ORDER as _AS_SETUP_ORDER
from .include import _OVERRIDES, set_attesto_clock, set_attesto_keystore
from .jwks_client import Fetcher, RemoteJWKS
from .policy import RESOURCE_SERVER_KEY, AttestoSecurityPolicy, ResourceServer, resource_server
from .request import RequestAdapter
from .responses import json_response
from .runtime import IAttesto, resolve_keystore
from .server import IAuthorizationServer
from .settings import PREFIX, SETTINGS, AttestoSettings, _validate_issuer, is_known_key

__all__ = ["build_resource_server", "includeme", "parse_resource_settings"]

PRM_PATH: Final = "/.well-known/oauth-protected-resource"
REPLAY_KEY: Final = "attesto.replay_store"
REVOKED_KEY: Final = "attesto.revoked_access_tokens"
FETCHER_KEY: Final = "attesto.jwks_fetcher"
ENGINE_KEY: Final = "attesto.resource_engine"
_CORS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Max-Age": "86400",
}


# -- settings -------------------------------------------------------------------------------


def parse_resource_settings(
    settings: Mapping[str, object], *, shared_keystore: bool = False
) -> AttestoSettings:
    """Parse the ``attesto.*`` settings of a resource server (another required set than the
    authorization server's: ``resource`` and one key source instead of a signing keystore).
    ``keystore`` is ``""`` when keys come from ``jwks_uri`` or a shared keystore."""
    unknown = sorted(k for k in settings if not is_known_key(k))
    if unknown:
        raise ConfigurationError(f"unknown setting {unknown[0]} (see the configuration reference)")
    values: dict[str, Any] = {}
    for name, spec in SETTINGS.items():
        key = PREFIX + name
        if key in settings:
            values[name.replace(".", "_")] = spec.parse(key, settings[key])
    for name in ("issuer", "resource"):
        if not values.get(name):
            raise ConfigurationError(f"missing required setting {PREFIX}{name}")
    if "keystore" in values and "jwks_uri" in values:
        raise ConfigurationError(
            "attesto.jwks_uri and attesto.keystore: set one (the AS's JWKS URL or a key file)"
        )
    if "keystore" not in values and "jwks_uri" not in values and not shared_keystore:
        raise ConfigurationError(
            "missing required setting attesto.jwks_uri (or attesto.keystore): where the "
            "authorization server's public keys come from"
        )
    values.setdefault("keystore", "")
    parsed = AttestoSettings(**values)
    _validate_issuer(parsed.issuer, parsed.require_https)
    for resource in parsed.resource:
        _validate_resource(resource, parsed.require_https)
    if parsed.jwks_uri is not None:
        _validate_fetch_url("attesto.jwks_uri", parsed.jwks_uri, parsed.require_https)
    for scope in parsed.scopes_supported:
        if not is_scope_token(scope):
            raise ConfigurationError(f"attesto.scopes_supported: {scope!r} is not a scope token")
    return parsed


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _validate_fetch_url(key: str, url: str, require_https: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and not require_https and _is_loopback(parts.hostname or ""):
        return
    raise ConfigurationError(f"{key}: must be https (http only on loopback without require_https)")


def _validate_resource(resource: str, require_https: bool) -> None:
    """A canonical resource URI: what clients send as ``resource`` and tokens carry as
    ``aud`` byte for byte, so its spelling is checked here rather than normalised."""
    parts = urlsplit(resource)
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError("attesto.resource: no userinfo")
    if parts.query or "?" in resource:
        raise ConfigurationError("attesto.resource: no query (RFC 8707 2)")
    canonical = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    if canonical != resource:
        raise ConfigurationError(
            f"attesto.resource: spell it canonically ({canonical}): clients and tokens "
            "compare it exactly"
        )
    _validate_fetch_url("attesto.resource", resource, require_https)


# -- construction ---------------------------------------------------------------------------


def _shared(config: Any) -> tuple[Keystore | None, Clock | None]:
    """The keystore and clock given by directive or by the authorization server's include."""
    overrides = config.registry.get(_OVERRIDES, {})
    runtime = config.registry.queryUtility(IAttesto)
    keystore = overrides.get("keystore") or (runtime.keystore if runtime is not None else None)
    clock = overrides.get("clock") or (runtime.clock if runtime is not None else None)
    return keystore, clock


def _keystore(
    config: Any, parsed: AttestoSettings, clock: Clock, shared: Keystore | None
) -> Keystore:
    if parsed.jwks_uri is not None:
        return RemoteJWKS(parsed.jwks_uri, clock=clock, fetcher=config.registry.get(FETCHER_KEY))
    if shared is not None:
        return shared
    if parsed.keystore == "generate":
        raise ConfigurationError(
            "attesto.keystore = generate: a resource server alone cannot verify tokens "
            "with a key it generated; set attesto.jwks_uri or a key file"
        )
    return resolve_keystore(parsed.keystore, package=config.package)


def _replay_store(config: Any, parsed: AttestoSettings, clock: Clock) -> tuple[Any, Any]:
    """(replay store, revoked-token store or None) from directives or settings."""
    registry = config.registry
    replay = registry.get(REPLAY_KEY)
    revoked = registry.get(REVOKED_KEY)
    if replay is not None:
        return replay, revoked
    if PREFIX + "replay_store" not in (registry.settings or {}):
        # One app that is its own authorization server: claim replays in, and consult the
        # denylist of, the AS's storage, so a cluster that shares it shares them too.
        server = registry.queryUtility(IAuthorizationServer)
        shared = server.stores.outside_requests() if server is not None else None
        if shared is not None:
            return shared.replay, revoked if revoked is not None else shared.revoked_access_tokens
    value = parsed.replay_store
    if value == "memory":
        from .storage.memory import MemoryReplayStore

        return MemoryReplayStore(clock), revoked
    if "://" in value:
        from .storage.engine import make_engine
        from .storage.sql import SqlStorage

        engine = make_engine(value)
        registry[ENGINE_KEY] = engine  # for the host to share or dispose
        stores = SqlStorage(engine, clock=clock).for_engine(engine)
        return stores.replay, revoked if revoked is not None else stores.revoked_access_tokens
    found = config.maybe_dotted(value)
    if not hasattr(found, "check_and_record") and callable(found):
        found = found(clock)  # a factory: called with the clock
    if not hasattr(found, "check_and_record"):
        raise ConfigurationError(f"attesto.replay_store: {value!r} is not a ReplayStore")
    return found, revoked


def _nonces(parsed: AttestoSettings, clock: Clock) -> NonceSource | None:
    if not parsed.dpop_resource_nonce:
        return None
    if parsed.dpop_nonce_secret:
        return HMACNonces(parsed.dpop_nonce_secret, clock=clock)
    return HMACNonces.generate(clock=clock)


def build_resource_server(config: Any, parsed: AttestoSettings) -> ResourceServer:
    """The :class:`~pyramid_attesto.policy.ResourceServer` of ``parsed`` settings."""
    shared_keystore, shared_clock = _shared(config)
    clock: Clock = shared_clock or SystemClock()
    keystore = _keystore(config, parsed, clock, shared_keystore)
    dpop_policy = (
        DPoPPolicy(algorithms=parsed.dpop_algorithms, max_age=parsed.dpop_max_age)
        if parsed.dpop_algorithms
        else DPoPPolicy(max_age=parsed.dpop_max_age)
    )
    replay, revoked = _replay_store(config, parsed, clock)
    if parsed.revocation_check and revoked is None:
        raise ConfigurationError(
            "attesto.revocation_check needs the shared denylist: a database URL in "
            "attesto.replay_store, or config.set_attesto_resource_stores(revoked_access_tokens=...)"
        )
    verifier = ResourceVerifier(
        tokens=AccessTokenVerifier(
            keystore,
            issuer=parsed.issuer,
            audience=parsed.resource,
            clock=clock,
            leeway=parsed.access_token_leeway,
        ),
        dpop=DPoPVerifier(clock=clock, policy=dpop_policy),
        replay=cast(ReplayStore, replay),
        clock=clock,
        policy=ResourcePolicy(
            require_dpop=parsed.dpop_required,
            nonces=_nonces(parsed, clock),
            revocation=cast(RevokedAccessTokenStore, revoked) if parsed.revocation_check else None,
        ),
    )
    adapter = RequestAdapter(
        default_url=_origin(parsed.resource[0]),
        public_url=parsed.public_url,
        trusted_proxies=parsed.trusted_proxies,
    )
    return ResourceServer(
        verifier=verifier,
        adapter=adapter,
        resources=parsed.resource,
        metadata_urls={r: protected_resource_metadata_url(r) for r in parsed.resource},
        challenge_options=ChallengeOptions(
            realm=parsed.realm,
            dpop_algs=dpop_policy.algorithms,
            bearer=not parsed.dpop_required,
        ),
        clock=clock,
        catalog=ScopeCatalog.of(parsed.scopes_supported) if parsed.scopes_supported else None,
        body_tokens="body" in parsed.bearer_methods,
        extractor=config.maybe_dotted(parsed.token_extractor) if parsed.token_extractor else None,
        principal_loader=(
            config.maybe_dotted(parsed.principal_loader) if parsed.principal_loader else None
        ),
        metadata_documents=_metadata_documents(parsed, dpop_policy),
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _metadata_documents(parsed: AttestoSettings, dpop: DPoPPolicy) -> dict[str, bytes]:
    """The RFC 9728 document of each resource, keyed by the resource's (decoded) path."""
    documents: dict[str, bytes] = {}
    for resource in parsed.resource:
        document = protected_resource_metadata(
            ProtectedResourceConfig(
                resource=resource,
                authorization_servers=parsed.authorization_servers or (parsed.issuer,),
                scopes_supported=parsed.scopes_supported,
                bearer_methods_supported=parsed.bearer_methods,
                resource_name=parsed.resource_name,
                resource_documentation=parsed.resource_documentation,
                dpop_signing_alg_values_supported=dpop.algorithms,
                dpop_bound_access_tokens_required=parsed.dpop_required,
                # RFC 9728 §2: certificate-bound tokens are always checked (RFC 8705 §3);
                # advertised when the deployment receives client certificates.
                tls_client_certificate_bound_access_tokens=parsed.mtls_enabled,
            )
        )
        body = json_response(document).body
        path = unquote(urlsplit(resource).path).rstrip("/")
        documents.setdefault(path, body)
    # RFC 9728 §3.1 places a path-less resource at the bare well-known URL; MCP clients fall
    # back to it, so it answers for the first resource when no resource is path-less.
    documents.setdefault("", next(iter(documents.values())))
    return documents


# -- views ----------------------------------------------------------------------------------


def protected_resource_metadata_view(request: Any) -> Response:
    """RFC 9728 §3: the metadata of the resource whose path follows the well-known prefix."""
    if request.method == "OPTIONS":
        response = Response(status=204)
        response.headers.update(_CORS)
        return response
    server = resource_server(request.registry)
    rest = request.path_info[len(PRM_PATH) :]
    if rest and not rest.startswith("/"):
        raise HTTPNotFound()
    body = server.metadata_documents.get(rest.rstrip("/"))
    if body is None:
        raise HTTPNotFound()
    response = Response(body=body, content_type="application/json", charset=None)
    response.headers.update(_CORS)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _scopes_option(value: object) -> tuple[str, ...]:
    scopes = (value,) if isinstance(value, str) else tuple(cast(Iterable[str], value))
    if not scopes or not all(isinstance(s, str) and is_scope_token(s) for s in scopes):
        raise ConfigurationError("attesto_scopes: one or more scope tokens (RFC 6749 3.3)")
    return scopes


def attesto_view_deriver(view: Any, info: Any) -> Any:
    """The ``attesto_scopes`` / ``attesto_acr_values`` / ``attesto_max_age`` view options."""
    options = info.options
    raw_scopes = options.get("attesto_scopes")
    raw_acr = options.get("attesto_acr_values")
    max_age = options.get("attesto_max_age")
    if raw_scopes is None and raw_acr is None and max_age is None:
        return view
    scopes = _scopes_option(raw_scopes) if raw_scopes is not None else ()
    acr_values: tuple[str, ...] = ()
    if raw_acr is not None:
        acr_values = (raw_acr,) if isinstance(raw_acr, str) else tuple(raw_acr)
        if not acr_values or not all(is_scope_token(v) for v in acr_values):
            raise ConfigurationError("attesto_acr_values: one or more acr values")
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
    ):
        raise ConfigurationError("attesto_max_age: whole seconds (RFC 9470 max_age)")

    def attesto_protected_view(context: Any, request: Any) -> Any:
        result = resource_server(request.registry).check(
            request, scopes, acr_values=acr_values, max_age=max_age
        )
        if not result:
            raise HTTPForbidden(result.msg, result=result)
        return view(context, request)

    return attesto_protected_view


attesto_view_deriver.options = (  # type: ignore[attr-defined]
    "attesto_scopes",
    "attesto_acr_values",
    "attesto_max_age",
)


# -- the include ----------------------------------------------------------------------------


def set_attesto_resource_stores(
    config: Any, *, replay: Any = None, revoked_access_tokens: Any = None
) -> None:
    """Directive: the DPoP replay store (a ``ReplayStore`` whose claim commits on its own) and
    the access-token denylist the resource server uses, instead of ``attesto.replay_store``."""

    def register() -> None:
        if replay is not None:
            config.registry[REPLAY_KEY] = replay
        if revoked_access_tokens is not None:
            config.registry[REVOKED_KEY] = revoked_access_tokens

    config.action(("attesto", "resource_stores"), register, order=PHASE1_CONFIG)


def set_attesto_jwks_fetcher(config: Any, fetcher: Fetcher) -> None:
    """Directive: how the ``attesto.jwks_uri`` document is fetched (tests, custom proxies):
    ``fetch(url, timeout, max_bytes) -> FetchResponse``."""

    def register() -> None:
        config.registry[FETCHER_KEY] = fetcher

    config.action(("attesto", "jwks_fetcher"), register, order=PHASE1_CONFIG)


def includeme(config: Any) -> None:
    """Install the resource server (see the module docstring)."""
    config.add_directive("set_attesto_keystore", set_attesto_keystore)
    config.add_directive("set_attesto_clock", set_attesto_clock)
    config.add_directive("set_attesto_resource_stores", set_attesto_resource_stores)
    config.add_directive("set_attesto_jwks_fetcher", set_attesto_jwks_fetcher)
    config.add_view_predicate("attesto_denial", AttestoDenialPredicate)
    config.add_view_deriver(
        attesto_view_deriver, name="attesto_scopes", under="secured_view", over="owrapped_view"
    )
    config.add_forbidden_view(forbidden_view, attesto_denial=True)
    saved_prefix = config.route_prefix
    config.route_prefix = None  # well-known documents stay at the root (D3)
    try:
        config.add_route(
            "attesto.protected_resource_metadata", PRM_PATH + "*subpath", request_method=None
        )
    finally:
        config.route_prefix = saved_prefix
    config.add_view(
        protected_resource_metadata_view,
        route_name="attesto.protected_resource_metadata",
        request_method=("GET", "HEAD", "OPTIONS"),
        permission=NO_PERMISSION_REQUIRED,
        require_csrf=False,
    )

    def install_policy() -> None:
        registry = config.registry
        key = PREFIX + "install_policy"
        settings = registry.settings or {}
        if key in settings and not SETTINGS["install_policy"].parse(key, settings[key]):
            return
        existing = registry.queryUtility(ISecurityPolicy)
        if isinstance(existing, AttestoSecurityPolicy):
            return
        registry.registerUtility(AttestoSecurityPolicy(fallback=existing), ISecurityPolicy)

    def build() -> None:
        registry = config.registry
        keystore, _ = _shared(config)
        parsed = parse_resource_settings(
            registry.settings or {}, shared_keystore=keystore is not None
        )
        registry[RESOURCE_SERVER_KEY] = build_resource_server(config, parsed)

    # After the host's set_security_policy (PHASE2) and before views are derived (they look
    # the policy up when they are registered).
    config.action(("attesto", "resource_policy"), install_policy, order=PHASE2_CONFIG + 1)
    # After the directives and the authorization server's setup (its keystore and clock).
    config.action(("attesto", "resource_server"), build, order=_AS_SETUP_ORDER + 1)
    # attesto.send_error / www_authenticate / no_store shape the challenges (DESIGN.md D24).
    install_response_hooks(config, order=_AS_SETUP_ORDER)
