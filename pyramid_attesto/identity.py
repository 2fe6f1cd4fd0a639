"""The identity of a request authenticated by an access token (``request.identity``).

DESIGN.md D10: user and client subjects live in separate ``sub`` namespaces and the token says
which kind its subject is, so :attr:`AttestoIdentity.kind` is exact, never guessed. The host's
own principal object (a user row, a service account) is loaded *lazily*, on first access to
:attr:`AttestoIdentity.principal`: a route that only needs scopes costs no database query.

>>> ident = AttestoIdentity(subject="u-1", kind="user", client_id="app", scopes=("read:reports",),
...                         claims={"sub": "u-1"}, token_type="Bearer")
>>> ident.covers("read:reports"), ident.covers("write:reports"), ident.is_user
(True, False, True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal

from .core.scopes import GrantedScopes, ScopeCatalog

__all__ = ["CLIENT", "USER", "AttestoIdentity", "PrincipalLoader", "TokenType"]

USER = "user"
CLIENT = "client"
TokenType = Literal["Bearer", "DPoP"]

PrincipalLoader = Callable[["AttestoIdentity"], object]
"""``loader(identity) -> principal | None``: the host's principal for a verified identity."""

_UNSET: Any = object()


def _read_only(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(mapping, MappingProxyType):
        return mapping  # a verified token's claims are read-only already
    return MappingProxyType(dict(mapping))


class AttestoIdentity:
    """Who is calling, as an access token says (RFC 9068 §2.2 claims, verified).

    ``subject`` is the token's ``sub``; ``kind`` its principal kind (``"user"``, ``"client"``
    or a kind the host's principal store defines; ``None`` when the token does not say, as a
    token from another issuer may not); ``client_id`` the client the token was
    issued to; ``scopes`` the granted scopes in token order; ``claims`` every claim of the
    token (read-only); ``cnf`` the confirmation (``{"jkt": ...}`` or ``{"x5t#S256": ...}``)
    when the token is sender-constrained; ``token_type`` the scheme it was presented with.
    """

    __slots__ = (
        "_granted",
        "_loader",
        "_principal",
        "claims",
        "client_id",
        "cnf",
        "kind",
        "scopes",
        "subject",
        "token_type",
    )

    subject: str
    kind: str | None
    client_id: str | None
    scopes: tuple[str, ...]
    claims: Mapping[str, Any]
    cnf: Mapping[str, str] | None
    token_type: TokenType
    _loader: PrincipalLoader | None
    _principal: object
    _granted: GrantedScopes | None

    def __init__(
        self,
        *,
        subject: str,
        kind: str | None,
        client_id: str | None,
        scopes: tuple[str, ...],
        claims: Mapping[str, Any],
        token_type: TokenType,
        cnf: Mapping[str, str] | None = None,
        principal_loader: PrincipalLoader | None = None,
    ) -> None:
        # object.__setattr__: this runs once per request, on the hot path (DESIGN.md rule 11).
        init = object.__setattr__
        init(self, "subject", subject)
        init(self, "kind", kind)
        init(self, "client_id", client_id)
        init(self, "scopes", scopes)
        init(self, "claims", _read_only(claims))
        init(self, "cnf", _read_only(cnf) if cnf is not None else None)
        init(self, "token_type", token_type)
        init(self, "_loader", principal_loader)
        init(self, "_principal", _UNSET)
        init(self, "_granted", None)

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("_principal", "_granted"):
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"AttestoIdentity.{name} is read-only")

    def __repr__(self) -> str:
        return (
            f"AttestoIdentity(subject={self.subject!r}, kind={self.kind!r}, "
            f"client_id={self.client_id!r}, scopes={self.scopes!r})"
        )

    @property
    def is_user(self) -> bool:
        """The subject is an end user (the token came from a user-facing grant)."""
        return self.kind == USER

    @property
    def is_client(self) -> bool:
        """The subject is the client itself (``client_credentials``)."""
        return self.kind == CLIENT

    @property
    def granted(self) -> GrantedScopes:
        """The granted scopes, indexed for linear-time checks (built on first use)."""
        if self._granted is None:
            self._granted = GrantedScopes(self.scopes)
        return self._granted

    def covers(self, scope: str, catalog: ScopeCatalog | None = None) -> bool:
        """Whether the granted scopes cover the concrete ``scope`` (DESIGN.md rule 9)."""
        return self.granted.covers(scope, catalog)

    @property
    def principal(self) -> object:
        """The host's principal for this subject, loaded once on first access (``None`` when
        the host configured no loader or knows no such principal)."""
        if self._principal is _UNSET:
            self._principal = self._loader(self) if self._loader is not None else None
        return self._principal

    @property
    def sender_constrained(self) -> bool:
        """Whether the token is bound to a key (DPoP) or a certificate (mTLS)."""
        return self.cnf is not None
