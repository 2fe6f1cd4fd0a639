"""What ``config.include("pyramid_attesto")`` does (imported only then, so that the package
itself imports no framework: ``attesto`` commands start without Pyramid).

``config.include("pyramid_attesto")`` does the following.

Registers, at startup, one deferred action (DESIGN.md rule 10) that parses and validates every
``attesto.*`` setting (:data:`pyramid_attesto.settings.SETTINGS` lists them; an unknown or
missing key raises a :class:`~pyramid_attesto.core.errors.ConfigurationError` naming it),
resolves the keystore, and stores the :class:`~pyramid_attesto.runtime.Attesto` runtime in
the registry.

Adds the directives ``config.set_attesto_keystore(keystore)``,
``config.set_attesto_clock(clock)`` and ``config.set_attesto_fetcher(fetcher)`` (outbound
fetches), and one per host policy object (``config.set_attesto_client_store(store)``,
``set_attesto_principal_store``, ``set_attesto_scope_policy``, ``set_attesto_consent_policy``,
``set_attesto_claims_provider``, ``set_attesto_event_sink``, ``set_attesto_registration_store``,
``set_attesto_registration_gate``, ``set_attesto_exchange_policy``,
``set_attesto_assertion_subject_resolver``, ``set_attesto_assertion_policy``,
``set_attesto_refresh_token_policy``, ``set_attesto_client_resource_policy``: an object or a
dotted name, see :mod:`pyramid_attesto.hostpolicy`), and the response hooks
``config.set_attesto_send_error(fn)``, ``config.set_attesto_www_authenticate(fn)`` and
``config.set_attesto_no_store(fn)`` (:mod:`pyramid_attesto.errorhooks`; with a ``no_store``
hook, a ``NewResponse`` subscriber); a directive wins over the setting.

Adds the routes, each named ``attesto.<endpoint>``:

- ``attesto.jwks``: ``GET /.well-known/jwks.json``, always at the application root, whatever
  the route prefix.
- ``attesto.oauth_authorization_server``, ``attesto.openid_configuration`` and
  ``attesto.openid_configuration_appended``: the discovery documents (RFC 8414, OpenID
  Connect Discovery), at the root too, at the paths derived from the issuer
  (:mod:`pyramid_attesto.server`).

Endpoint routes are mounted under ``attesto.route_prefix`` (``/oauth`` by default), or under
the ``route_prefix`` given to ``config.include``; with registration on, ``attesto.registration``
(``POST {prefix}/register``) and ``attesto.registration_client``
(``GET``/``PUT``/``DELETE {prefix}/register/{client_id}``, RFC 7592).

When ``attesto.resource`` is set, the application protects its own API too: the include also
includes :mod:`pyramid_attesto.resource` (the security policy, the challenges and the
protected-resource metadata), sharing this include's keystore and clock.
"""

from __future__ import annotations

from typing import Any

from pyramid.security import NO_PERMISSION_REQUIRED

from .core.clock import Clock
from .core.keys import Keystore
from .errorhooks import install_response_hooks
from .hostpolicy import HOST_OBJECTS, callback_settings, emit, resolve_host_policy
from .runtime import Attesto, IAttesto, default_clock, resolve_keystore
from .server import ENDPOINTS, EXTRA_ROUTES, IAuthorizationServer, build_server, get_server
from .settings import SETTINGS, parse_settings
from .storefactory import LazyStores, make_store_factory

__all__ = ["includeme"]

_OVERRIDES = "attesto.overrides"
_ORDER = 100  # after the directives' actions (default order 0)


def _overrides(config: Any) -> dict[str, object]:
    found: dict[str, object] = config.registry.setdefault(_OVERRIDES, {})
    return found


def set_attesto_keystore(config: Any, keystore: Keystore) -> None:
    """Directive: use ``keystore`` instead of the ``attesto.keystore`` setting."""

    def register() -> None:
        _overrides(config)["keystore"] = keystore

    config.action(("attesto", "keystore"), register)


def set_attesto_clock(config: Any, clock: Clock) -> None:
    """Directive: use ``clock`` as the time source (tests freeze time with it)."""

    def register() -> None:
        _overrides(config)["clock"] = clock

    config.action(("attesto", "clock"), register)


def set_attesto_fetcher(config: Any, fetcher: object) -> None:
    """Directive: make outbound fetches (metadata documents, issuers' ``jwks_uri``) with
    ``fetcher`` (a :class:`~pyramid_attesto.core.outbound.DocumentFetcher`) instead of the
    :class:`~pyramid_attesto.fetch.GuardedFetcher`; tests inject one."""

    def register() -> None:
        _overrides(config)["fetcher"] = fetcher

    config.action(("attesto", "fetcher"), register)


def _attesto_stores(request: Any) -> Any:
    """``request.attesto_stores``: the stores of this request (built once, on first use)."""
    factory = get_server(request.registry).stores
    return LazyStores(lambda: factory(request))


def _host_directive(name: str) -> Any:
    def directive(config: Any, value: object) -> None:
        def register() -> None:
            _overrides(config)[name] = value

        config.action(("attesto", name), register)

    directive.__name__ = f"set_attesto_{name}"
    directive.__doc__ = f"Directive: use ``value`` (an object or a dotted name) as the {name}."
    return directive


def _wellknown_routes(config: Any) -> None:
    saved = config.route_prefix
    config.route_prefix = None  # well-known documents stay at the root (DESIGN.md D3)
    try:
        config.add_route("attesto.jwks", "/.well-known/jwks.json", request_method="GET")
    finally:
        config.route_prefix = saved
    config.add_view(
        "pyramid_attesto.views.wellknown.jwks_view",
        route_name="attesto.jwks",
        permission=NO_PERMISSION_REQUIRED,
        require_csrf=False,
    )
    saved = config.route_prefix
    config.route_prefix = None
    try:
        for name, pattern in _DISCOVERY_ROUTES:
            config.add_route(name, pattern, request_method="GET")
            config.add_view(
                "pyramid_attesto.views.discovery.metadata_view",
                route_name=name,
                permission=NO_PERMISSION_REQUIRED,
                require_csrf=False,
            )
    finally:
        config.route_prefix = saved


_DISCOVERY_ROUTES = (
    ("attesto.oauth_authorization_server", "/.well-known/oauth-authorization-server*rest"),
    ("attesto.openid_configuration", "/.well-known/openid-configuration*rest"),
    ("attesto.openid_configuration_appended", "/{issuer_path:.+}/.well-known/openid-configuration"),
)


def _route_prefix(config: Any) -> str:
    """The include's ``route_prefix`` when one was given, else ``attesto.route_prefix``."""
    given = (config.route_prefix or "").strip("/")
    if given:
        return "/" + given
    key = "attesto.route_prefix"
    value = config.get_settings().get(key, SETTINGS["route_prefix"].default)
    prefix: str = SETTINGS["route_prefix"].parse(key, value)
    return prefix


def _exception_views(config: Any, route: str) -> None:
    # DESIGN.md rule 3: a database failure aborts and answers a clean 503.
    config.add_exception_view(
        "pyramid_attesto.views._http.database_error_view",
        context="sqlalchemy.exc.SQLAlchemyError",
        route_name=route,
    )
    config.add_exception_view(
        "pyramid_attesto.views._http.unexpected_error_view",
        context=Exception,
        route_name=route,
    )


def _endpoint_routes(config: Any, prefix: str) -> None:
    saved = config.route_prefix
    config.route_prefix = None  # the prefix is already in each pattern
    try:
        routes = [(e.name, e.path, e.view) for e in ENDPOINTS]
        for name, path, view in (*routes, *EXTRA_ROUTES):
            route = f"attesto.{name}"
            config.add_route(route, prefix + path)
            config.add_view(
                view, route_name=route, permission=NO_PERMISSION_REQUIRED, require_csrf=False
            )
            _exception_views(config, route)
    finally:
        config.route_prefix = saved


def includeme(config: Any) -> None:
    config.add_directive("set_attesto_keystore", set_attesto_keystore)
    config.add_directive("set_attesto_clock", set_attesto_clock)
    config.add_directive("set_attesto_fetcher", set_attesto_fetcher)
    for name in HOST_OBJECTS:
        config.add_directive(f"set_attesto_{name}", _host_directive(name))
    prefix = _route_prefix(config)
    config.add_request_method(_attesto_stores, "attesto_stores", reify=True)

    def setup() -> None:
        settings = config.get_settings()
        overrides = _overrides(config)
        if "keystore" in overrides and "attesto.keystore" not in settings:
            settings = {**settings, "attesto.keystore": "(set by directive)"}
        parsed = parse_settings(settings)
        keystore = overrides.get("keystore")
        if keystore is None:
            keystore = resolve_keystore(parsed.keystore, package=config.package)
        clock = overrides.get("clock") or default_clock()
        runtime = Attesto(settings=parsed, keystore=keystore, clock=clock)  # type: ignore[arg-type]
        config.registry.registerUtility(runtime, IAttesto)
        stores = make_store_factory(parsed, runtime.clock)
        host = resolve_host_policy(
            {f"attesto.{n}": getattr(parsed, n) for n in HOST_OBJECTS},
            overrides,
            scopes_supported=parsed.scopes_supported,
            package=config.package,
            sql_registration_store=stores.registration_store,
            callbacks=callback_settings(settings),
        )
        registry = config.registry
        server = build_server(
            parsed,
            runtime.keystore,
            route_prefix=prefix,
            host=host,
            stores=stores,
            clock=runtime.clock,
            emit=lambda event: emit(registry, host, event),
            fetcher=overrides.get("fetcher"),  # type: ignore[arg-type]
        )
        config.registry.registerUtility(server, IAuthorizationServer)

    config.action(("attesto", "setup"), setup, order=_ORDER)
    # attesto.send_error / www_authenticate / no_store (DESIGN.md D24).
    install_response_hooks(config, order=_ORDER)
    _wellknown_routes(config)
    _endpoint_routes(config, prefix)
    if "attesto.resource" in config.get_settings():
        # The app is its own resource server too: install the security policy (the card's
        # one include). Including pyramid_attesto.resource again is harmless.
        config.include("pyramid_attesto.resource")
