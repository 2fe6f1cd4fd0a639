"""Scope algebra (RFC 6749 §3.3; DESIGN.md rule 9).

Scopes are opaque ``NQCHAR`` tokens (``%x21 / %x23-5B / %x5D-7E``), never converted or
interpreted beyond this algebra:

- a **concrete** scope (``read:reports``) covers exactly itself;
- a **wildcard grant form** ``<resource>:*`` or ``<resource>.*`` (``read:*``, ``reports.*``),
  where ``<resource>`` is non-empty and holds no ``:`` or ``.``, covers the *catalog* scopes
  whose resource is ``<resource>`` with the same separator (``read:*`` covers
  ``read:reports`` and ``read:audit:log``, not ``read.reports`` nor ``reader:x``);
- the **system scope** ``*`` covers every catalog scope and is for system-issued
  credentials only: :meth:`ScopeCatalog.grant_form_errors` refuses it on public surfaces;
- a **required** scope (a view permission) is always concrete: a wildcard or ``*`` as a
  requirement is never satisfied.

Every operation is linear in the size of its inputs: the granted set is indexed once and a
required scope costs one scan for its first separator plus two set look-ups (a quadratic
scope check was a DoS lever elsewhere, see reference/attesto.md §5.1). Scope strings are
also capped in length before they are split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InvalidScope

__all__ = [
    "MAX_SCOPE_LENGTH",
    "SYSTEM_SCOPE",
    "GrantedScopes",
    "ScopeCatalog",
    "format_scope",
    "is_scope_token",
    "is_wildcard",
    "narrow",
    "parse_scope",
    "resource_prefix",
]

SYSTEM_SCOPE = "*"
MAX_SCOPE_LENGTH = 8192
"""The longest ``scope`` string accepted, in characters (an input cap, not a protocol rule)."""

_NQCHAR_TOKEN = re.compile(r"\A[\x21\x23-\x5B\x5D-\x7E]+\Z")
_SEPARATOR = re.compile(r"[:.]")
_WILDCARD = re.compile(r"\A[^:.]+[:.]\*\Z")


def is_scope_token(token: str) -> bool:
    """Whether ``token`` is one RFC 6749 §3.3 ``scope-token`` (1*NQCHAR)."""
    return bool(_NQCHAR_TOKEN.match(token))


def is_wildcard(scope: str) -> bool:
    """Whether ``scope`` is a ``<resource>:*`` / ``<resource>.*`` grant form."""
    return bool(_WILDCARD.match(scope))


def resource_prefix(scope: str) -> str | None:
    """The resource part of a scope with its separator (``read:`` for ``read:reports``), or
    ``None`` when the scope has no separator or starts with one."""
    match = _SEPARATOR.search(scope)
    if match is None or match.start() == 0:
        return None
    return scope[: match.end()]


def parse_scope(value: str | None) -> tuple[str, ...]:
    """Split a ``scope`` parameter into its tokens, in order, without duplicates.

    ``None`` and the empty string give ``()`` (the caller applies a default scope, RFC 6749
    §3.3). Tokens are separated by spaces; anything that is not NQCHAR is ``invalid_scope``.
    """
    if not value:
        return ()
    if len(value) > MAX_SCOPE_LENGTH:
        raise InvalidScope("scope is too long", reason="too_long")
    seen: dict[str, None] = {}
    for token in value.split(" "):
        if not token:
            continue  # tolerate repeated spaces, as most peers do
        if not is_scope_token(token):
            raise InvalidScope("scope has a character outside RFC 6749 3.3", reason="charset")
        seen[token] = None
    return tuple(seen)


def format_scope(scopes: Iterable[str]) -> str:
    """Join scope tokens into a ``scope`` parameter value."""
    return " ".join(scopes)


@dataclass(frozen=True, slots=True)
class ScopeCatalog:
    """The concrete scopes a deployment knows (``attesto.scopes_supported``)."""

    scopes: frozenset[str]
    resources: frozenset[str]

    @classmethod
    def of(cls, scopes: Iterable[str]) -> ScopeCatalog:
        concrete: set[str] = set()
        for scope in scopes:
            if not is_scope_token(scope) or scope == SYSTEM_SCOPE or is_wildcard(scope):
                raise ValueError(f"catalog scope {scope!r} is not a concrete scope token")
            concrete.add(scope)
        prefixes = {p for s in concrete if (p := resource_prefix(s)) is not None}
        return cls(frozenset(concrete), frozenset(prefixes))

    def __contains__(self, scope: object) -> bool:
        return scope in self.scopes

    def is_grant_form(self, scope: str, *, allow_system: bool = False) -> bool:
        """Whether ``scope`` may be granted: a catalog scope, a wildcard over at least one
        catalog scope, or (``allow_system`` only) the system scope."""
        if scope in self.scopes:
            return True
        if scope == SYSTEM_SCOPE:
            return allow_system
        return is_wildcard(scope) and scope[:-1] in self.resources

    def grant_form_errors(
        self, scopes: Iterable[str], *, allow_system: bool = False
    ) -> tuple[str, ...]:
        """The scopes in ``scopes`` that may not be granted (for an ``invalid_scope``)."""
        return tuple(s for s in scopes if not self.is_grant_form(s, allow_system=allow_system))


class GrantedScopes:
    """A granted scope set, indexed once so that each check is linear.

    >>> granted = GrantedScopes(["read:*", "profile"])
    >>> granted.covers("read:reports"), granted.covers("write:reports"), granted.covers("read:*")
    (True, False, False)
    """

    __slots__ = ("_concrete", "_prefixes", "_system")

    def __init__(self, granted: Iterable[str]) -> None:
        concrete: set[str] = set()
        prefixes: set[str] = set()
        system = False
        for scope in granted:
            if scope == SYSTEM_SCOPE:
                system = True
            elif is_wildcard(scope):
                prefixes.add(scope[:-1])
            elif is_scope_token(scope):
                concrete.add(scope)
        self._concrete = frozenset(concrete)
        self._prefixes = frozenset(prefixes)
        self._system = system

    def covers(self, required: str, catalog: ScopeCatalog | None = None) -> bool:
        """Whether the grant covers the concrete scope ``required``.

        Wildcards and ``*`` cover only catalog scopes; without a catalog, the required scope
        itself is taken as the catalog (it comes from the application, not the client).
        """
        if required == SYSTEM_SCOPE or is_wildcard(required) or not is_scope_token(required):
            return False
        if required in self._concrete:
            return True
        if catalog is not None and required not in catalog:
            return False
        if self._system:
            return True
        prefix = resource_prefix(required)
        return prefix is not None and prefix in self._prefixes

    def covers_all(self, required: Iterable[str], catalog: ScopeCatalog | None = None) -> bool:
        """Whether every scope of ``required`` is covered (an empty requirement is not)."""
        found = False
        for scope in required:
            if not self.covers(scope, catalog):
                return False
            found = True
        return found

    def missing(
        self, required: Iterable[str], catalog: ScopeCatalog | None = None
    ) -> tuple[str, ...]:
        """The scopes of ``required`` that the grant does not cover."""
        return tuple(s for s in required if not self.covers(s, catalog))

    def holds_form(self, scope: str) -> bool:
        """Whether ``scope`` (of any form) is itself part of the grant."""
        if scope == SYSTEM_SCOPE:
            return self._system
        if is_wildcard(scope):
            return scope[:-1] in self._prefixes or self._system
        return scope in self._concrete


def narrow(
    granted: Iterable[str], requested: Iterable[str] | None, catalog: ScopeCatalog | None = None
) -> tuple[str, ...]:
    """The scope of a refreshed or exchanged token: ``requested`` when it only narrows
    ``granted`` (RFC 6749 §6, RFC 8693 §2.1), ``granted`` when nothing was requested.

    A requested scope is allowed when the grant holds it as is (concrete or the same
    wildcard) or covers it as a concrete catalog scope; anything else is ``invalid_scope``.
    """
    granted = tuple(granted)
    if requested is None:
        return granted
    index = GrantedScopes(granted)
    result: dict[str, None] = {}
    for scope in requested:
        if not (index.holds_form(scope) or index.covers(scope, catalog)):
            raise InvalidScope("scope exceeds what was granted", reason="broader_than_grant")
        result[scope] = None
    if not result:
        raise InvalidScope("an empty scope cannot be requested", reason="empty")
    return tuple(result)
