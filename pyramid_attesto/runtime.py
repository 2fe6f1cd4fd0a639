"""The configured add-on of one Pyramid application: parsed settings and resolved host
objects, built once by the deferred action of ``includeme`` and kept in the registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyramid.path import DottedNameResolver
from zope.interface import Interface

from .core.clock import Clock, SystemClock
from .core.errors import ConfigurationError
from .core.keys import FileKeystore, Keystore, generate_development_keystore
from .settings import AttestoSettings

__all__ = ["Attesto", "IAttesto", "get_attesto", "resolve_keystore"]


class IAttesto(Interface):  # type: ignore[misc]
    """Registry key of the :class:`Attesto` runtime."""


@dataclass(frozen=True, slots=True)
class Attesto:
    """Everything the views and the security policy need, resolved at startup."""

    settings: AttestoSettings
    keystore: Keystore
    clock: Clock


def get_attesto(registry: Any) -> Attesto:
    """The runtime of ``registry`` (a :class:`ConfigurationError` if it was not included)."""
    runtime = registry.queryUtility(IAttesto)
    if runtime is None:
        raise ConfigurationError(
            'pyramid_attesto is not configured: config.include("pyramid_attesto")'
        )
    assert isinstance(runtime, Attesto)
    return runtime


def resolve_keystore(value: str, *, package: object = None) -> Keystore:
    """``attesto.keystore``: ``generate`` (a per-process development key), one or more key
    files (private JWK Sets or PEM, separated by whitespace), or the dotted name of a
    :class:`~pyramid_attesto.core.keys.Keystore` or of a zero-argument factory returning one.
    """
    if value == "generate":
        return generate_development_keystore()
    parts = value.split()
    if all(Path(p).suffix in (".json", ".jwks", ".pem") for p in parts):
        return FileKeystore(*parts)
    try:
        found = DottedNameResolver(package).resolve(value)
    except (ImportError, ValueError) as exc:
        raise ConfigurationError(f"attesto.keystore: cannot resolve {value!r}: {exc}") from None
    if callable(found) and not hasattr(found, "jwks"):
        found = found()
    if not all(hasattr(found, a) for a in ("signer", "verification_key", "jwks")):
        raise ConfigurationError(f"attesto.keystore: {value!r} is not a Keystore")
    return found  # type: ignore[no-any-return]


def default_clock() -> Clock:
    return SystemClock()
