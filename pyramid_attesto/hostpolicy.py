"""Resolution of the host policy objects (DESIGN.md "Host policy", rule 10).

Each object is named by a dotted name in settings or handed to a directive; the directive
wins. A dotted name may point at an instance, a module of functions, a class (instantiated
without arguments) or a zero-argument factory. The object must have every method of its
Protocol; anything missing raises :class:`~pyramid_attesto.core.errors.ConfigurationError`
naming the setting, at startup.

=================================  ============================================  ==========
setting / directive                Protocol                                      required
=================================  ============================================  ==========
``attesto.client_store``           :class:`~pyramid_attesto.core.clients.         by the
``set_attesto_client_store``       ClientStore`                                  token
                                                                                 endpoint
``attesto.principal_store``        :class:`~pyramid_attesto.core.host.            no
``set_attesto_principal_store``    PrincipalStore`
``attesto.scope_policy``           :class:`~pyramid_attesto.core.host.            no (the
``set_attesto_scope_policy``       ScopePolicy`                                  catalog)
``attesto.consent_policy``         :class:`~pyramid_attesto.core.host.            no
``set_attesto_consent_policy``     ConsentPolicy`
``attesto.claims_provider``        :class:`~pyramid_attesto.core.host.            no
``set_attesto_claims_provider``    ClaimsProvider`
``attesto.event_sink``             :class:`~pyramid_attesto.core.host.EventSink`  no
``set_attesto_event_sink``
``attesto.registration_store``     :class:`~pyramid_attesto.core.registration.    with
``set_attesto_registration_store`` RegistrationStore` (or ``memory``,            registration
                                   ``sqlalchemy``)
``attesto.registration_gate``      :class:`~pyramid_attesto.core.registration.    no
``set_attesto_registration_gate``  RegistrationGate`
``attesto.exchange_policy``        :class:`~pyramid_attesto.core.token_exchange.  no
``set_attesto_exchange_policy``    ExchangePolicy`
``attesto.assertion_subject_       :class:`~pyramid_attesto.core.jwt_bearer.      with
resolver``                         SubjectResolver`                              jwt-bearer
``attesto.assertion_policy``       :class:`~pyramid_attesto.core.jwt_bearer.      no
``set_attesto_assertion_policy``   AssertionPolicy`
``attesto.refresh_token_policy``   :class:`~pyramid_attesto.core.issuance.        no (the
``set_attesto_refresh_token_       RefreshTokenPolicy`                           default)
policy``
``attesto.client_resource_         :class:`~pyramid_attesto.core.issuance.       no
policy``                           ClientResourcePolicy`
``set_attesto_client_resource_
policy``
=================================  ============================================  ==========

Flat callbacks replace one method of a host object: ``attesto.<name>.<method>`` names a
callable (``attesto.client_store.load_client = myapp.clients:load_client``). It applies on top
of the object the setting or directive gives (the other methods stay that object's); without
one, callbacks for every method of the Protocol make the object
(``attesto.principal_store.load_principal`` alone is a whole principal store). The key
carries the object's name because method names alone are ambiguous (``load``, ``store``,
``delete``, ``consent``) and could collide with other settings.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyramid.path import DottedNameResolver

from .core.clients import ClientStore
from .core.errors import ConfigurationError
from .core.host import (
    CatalogScopePolicy,
    ClaimsProvider,
    ConsentPolicy,
    Event,
    EventSink,
    NullEventSink,
    PrincipalStore,
    ScopePolicy,
)
from .core.issuance import ClientResourcePolicy, RefreshTokenPolicy
from .core.jwt_bearer import AssertionPolicy, SubjectResolver
from .core.registration import MemoryRegistrationStore, RegistrationGate, RegistrationStore
from .core.scopes import ScopeCatalog
from .core.token_exchange import ExchangePolicy

__all__ = [
    "HOST_OBJECTS",
    "HostPolicy",
    "callback_settings",
    "emit",
    "is_callback_key",
    "resolve_host_policy",
]

logger = logging.getLogger(__name__)

HOST_OBJECTS: Mapping[str, type] = {
    "client_store": ClientStore,
    "principal_store": PrincipalStore,
    "scope_policy": ScopePolicy,
    "consent_policy": ConsentPolicy,
    "claims_provider": ClaimsProvider,
    "event_sink": EventSink,
    "registration_store": RegistrationStore,
    "registration_gate": RegistrationGate,
    "exchange_policy": ExchangePolicy,
    "assertion_subject_resolver": SubjectResolver,
    "assertion_policy": AssertionPolicy,
    # -- issuance decisions (core.issuance) ---------------------------------------------------
    "refresh_token_policy": RefreshTokenPolicy,
    "client_resource_policy": ClientResourcePolicy,
}
"""Each host object's name (``attesto.<name>``, ``set_attesto_<name>``) and Protocol."""


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The resolved host objects (``None``: not configured)."""

    client_store: ClientStore | None
    principal_store: PrincipalStore | None
    scope_policy: ScopePolicy
    consent_policy: ConsentPolicy | None
    claims_provider: ClaimsProvider | None
    event_sink: EventSink
    registration_store: RegistrationStore | None = None
    registration_gate: RegistrationGate | None = None
    exchange_policy: ExchangePolicy | None = None
    assertion_subject_resolver: SubjectResolver | None = None
    assertion_policy: AssertionPolicy | None = None
    refresh_token_policy: RefreshTokenPolicy | None = None
    client_resource_policy: ClientResourcePolicy | None = None


def _methods(protocol: type) -> list[str]:
    return sorted(
        name
        for name, value in vars(protocol).items()
        if not name.startswith("_") and callable(value)
    )


def _conforms(obj: object, methods: list[str]) -> bool:
    return all(callable(getattr(obj, m, None)) for m in methods)


def resolve_host_object(key: str, value: object, protocol: type, *, package: object) -> object:
    """Resolve ``value`` (an object or a dotted name) and check it against ``protocol``."""
    methods = _methods(protocol)
    found = value
    if isinstance(value, str):
        try:
            found = DottedNameResolver(package).resolve(value.strip())
        except (ImportError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"{key}: cannot resolve {value!r}: {exc}") from None
    if inspect.isclass(found) or (
        callable(found) and not inspect.ismodule(found) and not _conforms(found, methods)
    ):
        try:
            found = found()
        except TypeError as exc:
            raise ConfigurationError(f"{key}: cannot instantiate {value!r}: {exc}") from None
    missing = [m for m in methods if not callable(getattr(found, m, None))]
    if missing:
        raise ConfigurationError(
            f"{key}: {value!r} does not implement {protocol.__name__} "
            f"(missing {', '.join(missing)})"
        )
    return found


# -- flat callbacks: attesto.<object>.<method> = pkg.mod:fn ---------------------------------


def is_callback_key(key: str) -> bool:
    """Whether ``key`` names a flat callback (``attesto.client_store.load_client``)."""
    if not key.startswith("attesto."):
        return False
    name, _, method = key[len("attesto.") :].partition(".")
    protocol = HOST_OBJECTS.get(name)
    return protocol is not None and method in _methods(protocol)


def callback_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The flat-callback keys of ``settings``."""
    return {key: value for key, value in settings.items() if is_callback_key(key)}


class _WithCallbacks:
    """A host object whose methods named in ``callbacks`` are replaced by them; the others
    are the base object's (``None``: there is none, every method must be a callback)."""

    def __init__(self, base: object, callbacks: Mapping[str, Any]) -> None:
        self._base = base
        self._callbacks = dict(callbacks)

    def __getattr__(self, name: str) -> Any:
        callbacks = self.__dict__.get("_callbacks", {})
        if name in callbacks:
            return callbacks[name]
        return getattr(self.__dict__.get("_base"), name)

    def __repr__(self) -> str:
        return f"<{self._base!r} with {', '.join(sorted(self._callbacks))}>"


def _resolve_callback(key: str, value: object, package: object) -> Any:
    found = value
    if isinstance(value, str):
        try:
            found = DottedNameResolver(package).resolve(value.strip())
        except (ImportError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"{key}: cannot resolve {value!r}: {exc}") from None
    if not callable(found):
        raise ConfigurationError(f"{key}: {value!r} is not callable")
    return found


def _apply_callbacks(
    name: str, base: object, callbacks: Mapping[str, Any], package: object
) -> object:
    prefix = f"attesto.{name}."
    mine = {
        key[len(prefix) :]: _resolve_callback(key, value, package)
        for key, value in callbacks.items()
        if key.startswith(prefix) and value not in (None, "")
    }
    if not mine:
        return base
    combined = _WithCallbacks(base, mine)
    protocol = HOST_OBJECTS[name]
    missing = [m for m in _methods(protocol) if not callable(getattr(combined, m, None))]
    if missing:
        raise ConfigurationError(
            f"attesto.{name}: the callbacks do not make a {protocol.__name__} (set "
            f"{', '.join(prefix + m for m in missing)}, or attesto.{name} for the rest)"
        )
    return combined


def resolve_host_policy(
    settings: Mapping[str, Any],
    overrides: Mapping[str, object],
    *,
    scopes_supported: tuple[str, ...],
    package: object = None,
    sql_registration_store: Callable[[], RegistrationStore] | None = None,
    callbacks: Mapping[str, Any] | None = None,
) -> HostPolicy:
    """Resolve every host object: the directive's value wins over ``attesto.<name>``; then
    each flat callback ``attesto.<name>.<method>`` replaces that method (``callbacks``: the
    settings' callback keys, :func:`callback_settings`).

    ``attesto.registration_store = memory`` is a :class:`MemoryRegistrationStore` (one
    process); ``sqlalchemy`` is what ``sql_registration_store`` makes (the attesto database,
    :meth:`pyramid_attesto.storefactory.StoreFactory.registration_store`)."""
    found: dict[str, Any] = {}
    for name, protocol in HOST_OBJECTS.items():
        key = f"attesto.{name}"
        value = overrides.get(name, settings.get(key))
        if value is None or value == "":
            found[name] = None
        elif name == "registration_store" and value == "memory":
            found[name] = MemoryRegistrationStore()
        elif name == "registration_store" and value == "sqlalchemy":
            if sql_registration_store is None:
                raise ConfigurationError(f"{key}: sqlalchemy needs the attesto storage")
            found[name] = sql_registration_store()
        else:
            found[name] = resolve_host_object(key, value, protocol, package=package)
        found[name] = _apply_callbacks(name, found[name], callbacks or {}, package)
    if found["scope_policy"] is None:
        found["scope_policy"] = CatalogScopePolicy(ScopeCatalog.of(scopes_supported))
    if found["event_sink"] is None:
        found["event_sink"] = NullEventSink()
    return HostPolicy(**found)


def emit(registry: Any, host: HostPolicy, event: Event) -> None:
    """Hand ``event`` to the host's sink and to Pyramid subscribers; a failing sink or
    subscriber is logged, never turned into a protocol error."""
    try:
        host.event_sink.on_event(event)
    except Exception:
        logger.exception("pyramid_attesto: the event sink failed on %s", event.name)
    try:
        registry.notify(event)
    except Exception:
        logger.exception("pyramid_attesto: a subscriber failed on %s", event.name)
