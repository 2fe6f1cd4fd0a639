"""The response hooks of a deployment (DESIGN.md D24): ``attesto.send_error``,
``attesto.www_authenticate`` and ``attesto.no_store``.

Each is a dotted name in settings (``pkg.mod:fn`` or ``pkg.mod.fn``), or a callable handed to
its directive, which wins: ``config.set_attesto_send_error(fn)``,
``config.set_attesto_www_authenticate(fn)``, ``config.set_attesto_no_store(fn)``. They are
resolved once at startup (a name that does not resolve to a callable raises
:class:`~pyramid_attesto.core.errors.ConfigurationError` naming the setting) and kept in the
registry as :class:`~pyramid_attesto.responses.ResponseHooks`.

- ``send_error(request, error, body)`` (:class:`~pyramid_attesto.responses.SendError`):
  the envelope of every attesto JSON error response (token, revocation, introspection, PAR,
  UserInfo, registration, the resource server's challenges, ``405``, ``503``);
- ``www_authenticate(request, challenges, error)``
  (:class:`~pyramid_attesto.challenges.WWWAuthenticate`): the challenges of the resource
  server, UserInfo and the registration endpoints, and the ``Basic`` challenge of a failed
  client authentication (token, PAR, revocation, introspection);
- ``no_store(request, response)`` (:class:`~pyramid_attesto.responses.NoStore`): a
  deployment's own headers on every response attesto marks non-cacheable. It is run by a
  ``NewResponse`` subscriber registered only when the hook is set, so a deployment without
  it pays nothing per response.

Both :mod:`pyramid_attesto` and :mod:`pyramid_attesto.resource` install them; installing
twice is harmless (the subscriber is registered once).
"""

from __future__ import annotations

from typing import Any

from pyramid.interfaces import INewResponse
from pyramid.path import DottedNameResolver

from .core.errors import ConfigurationError
from .responses import IResponseHooks, ResponseHooks, no_store_subscriber
from .settings import PREFIX, SETTINGS

__all__ = ["HOOKS", "install_response_hooks", "resolve_response_hooks"]

HOOKS = ("send_error", "www_authenticate", "no_store")
"""The hook names: ``attesto.<name>`` and ``config.set_attesto_<name>``."""

_OVERRIDES = "attesto.response_hook_overrides"
_NO_STORE_SUBSCRIBED = "attesto.no_store_subscribed"


def _overrides(registry: Any) -> dict[str, object]:
    found: dict[str, object] = registry.setdefault(_OVERRIDES, {})
    return found


def _resolve(key: str, value: object, package: object) -> Any:
    found = value
    if isinstance(value, str):
        try:
            found = DottedNameResolver(package).resolve(
                SETTINGS[key[len(PREFIX) :]].parse(key, value)
            )
        except (ImportError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"{key}: cannot resolve {value!r}: {exc}") from None
    if not callable(found):
        raise ConfigurationError(f"{key}: {value!r} is not callable")
    return found


def resolve_response_hooks(
    settings: Any, overrides: dict[str, object], *, package: object = None
) -> ResponseHooks:
    """The hooks: each directive's value wins over ``attesto.<name>``."""
    found: dict[str, Any] = {}
    for name in HOOKS:
        key = PREFIX + name
        value = overrides.get(name, settings.get(key))
        found[name] = None if value is None or value == "" else _resolve(key, value, package)
    return ResponseHooks(**found)


def _directive(name: str) -> Any:
    def directive(config: Any, value: object) -> None:
        def register() -> None:
            _overrides(config.registry)[name] = value

        config.action(("attesto", name), register)

    directive.__name__ = f"set_attesto_{name}"
    directive.__doc__ = f"Directive: use ``value`` (a callable or a dotted name) as {name}."
    return directive


def install_response_hooks(config: Any, *, order: int) -> None:
    """Add the directives and the deferred action that resolves the hooks (at ``order``,
    after the directives' own actions)."""
    for name in HOOKS:
        config.add_directive(f"set_attesto_{name}", _directive(name))

    def setup() -> None:
        registry = config.registry
        hooks = resolve_response_hooks(
            registry.settings or {}, _overrides(registry), package=config.package
        )
        registry.registerUtility(hooks, IResponseHooks)
        if hooks.no_store is not None and not registry.get(_NO_STORE_SUBSCRIBED):
            registry[_NO_STORE_SUBSCRIBED] = True
            registry.registerHandler(no_store_subscriber(hooks.no_store), (INewResponse,))

    # No discriminator: both includes install it, and resolving twice is the same.
    config.action(None, setup, order=order)
