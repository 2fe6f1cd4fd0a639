"""Host policy: what the application supplies besides its clients (DESIGN.md "Host policy").

The client registry is :class:`~.clients.ClientStore`. This module holds the others, each a
:class:`typing.Protocol` a host implements with a plain class (or a module of functions):

- :class:`PrincipalStore`: who a ``sub`` is, and whether it is still active (DESIGN.md D10,
  D12);
- :class:`ScopePolicy`: which of the requested scopes a client (and user) gets;
- :class:`ConsentPolicy`: login and consent at the authorization endpoint;
- :class:`ClaimsProvider`: UserInfo and ID-token claims;
- :class:`EventSink`: every decision, as an :class:`Event` (never a secret, rule 4).

Every Protocol here is framework-free; :class:`ConsentPolicy` alone receives the web
framework's request object (opaque here) because it may render a page or redirect.

:class:`CatalogScopePolicy` is the default scope policy: the requested scopes must be grant
forms of the catalog (``attesto.scopes_supported``) and, when the client registered a
``scope``, within it; no ``scope`` means the client's registered scope (RFC 6749 §3.3:
a server may apply a default instead of failing, which MCP clients rely on).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from .clients import Client
from .errors import InvalidScope
from .scopes import GrantedScopes, ScopeCatalog, parse_scope

if TYPE_CHECKING:
    from .authorize import PendingAuthorization

__all__ = [
    "EVENT_NAMES",
    "CatalogScopePolicy",
    "ClaimsProvider",
    "ConsentPolicy",
    "Event",
    "EventName",
    "EventSink",
    "NullEventSink",
    "Principal",
    "PrincipalStore",
    "ScopePolicy",
]


@dataclass(frozen=True, slots=True)
class Principal:
    """A resource owner the host knows: ``subject`` is the ``sub`` claim (unique per issuer,
    never reassigned, OIDC Core §2); ``active`` ``False`` stops refresh (D12)."""

    subject: str
    active: bool = True
    claims: Mapping[str, Any] = field(default_factory=dict)


class PrincipalStore(Protocol):
    """The host's users.

    ``load_principal`` is called when a grant involves a user (code redemption, refresh): a
    disabled or deleted user returns ``None`` (or a :class:`Principal` with ``active=False``)
    and the grant fails with ``invalid_grant``.
    """

    def load_principal(self, subject: str) -> Principal | None:
        """The principal whose ``sub`` is ``subject``, or ``None``."""
        ...


class ScopePolicy(Protocol):
    """Decides the granted scope.

    ``requested`` is the parsed ``scope`` parameter (``()`` when absent); ``subject`` is the
    user for user-facing grants and ``None`` for ``client_credentials``. Return the granted
    scopes (a subset of what was asked, or a default when nothing was asked); raise
    :class:`~.errors.InvalidScope` to refuse. The token endpoint never grants more than this
    returns.
    """

    def authorize_scope(
        self, client: Client, requested: Sequence[str], *, subject: str | None
    ) -> Sequence[str]:
        """The scopes granted to ``client`` (and ``subject``) out of ``requested``."""
        ...


class ConsentPolicy(Protocol):
    """Login and consent at the authorization endpoint.

    ``request`` is the web framework's request (a Pyramid request here);
    ``authorization`` is the validated :class:`~.authorize.PendingAuthorization`: its
    ``client``, its ``request`` (scopes, resources, ``prompt``, ``max_age``, ``login_hint``)
    and its ``resume_url``. A login or consent page that leaves sends the browser back to
    ``resume_url`` when done; the request is resumed from the server-side copy (D13).

    ``authenticate_resource_owner`` returns the logged-in user (a ``sub`` string or an
    :class:`~.authorize.Authenticated` with ``auth_time`` and ``acr``), ``None`` when nobody
    is logged in and no page should be shown (``login_required``), or a response to send
    instead (the host's login page, or a redirect to it). Honour ``prompt=login`` and
    ``max_age`` here. ``consent`` returns ``True`` (granted), ``False`` (``access_denied``)
    or a response (a consent page). With ``prompt=none`` a response from either is turned
    into ``login_required`` / ``consent_required``.
    """

    def authenticate_resource_owner(
        self, request: Any, authorization: PendingAuthorization
    ) -> object:
        """The current user, ``None``, or a response to send (a login page)."""
        ...

    def consent(self, request: Any, authorization: PendingAuthorization, subject: str) -> object:
        """``True``, ``False`` or a response to send (a consent page)."""
        ...


class ClaimsProvider(Protocol):
    """Claims about a user for UserInfo (OIDC Core §5.3) and ID tokens (§2).

    Filter by ``scopes`` (``profile``, ``email``, …, OIDC Core §5.4) and ``requested``
    (the ``claims`` request parameter, §5.5). Never return ``sub``: it is set by the server.
    """

    def userinfo_claims(
        self, subject: str, scopes: Sequence[str], requested: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """The UserInfo claims of ``subject``."""
        ...

    def id_token_claims(
        self, client: Client, subject: str, scopes: Sequence[str], requested: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """The extra ID-token claims of ``subject`` for ``client``."""
        ...


EventName = Literal[
    "token_issued",
    "token_denied",
    "code_issued",
    "code_reuse_detected",
    "authorization_denied",
    "token_revoked",
    "refresh_rotated",
    "refresh_reuse_detected",
    "introspected",
    "client_registered",
    "client_updated",
    "client_deleted",
]
EVENT_NAMES: frozenset[str] = frozenset(get_args(EventName))


@dataclass(frozen=True, slots=True)
class Event:
    """One decision of the authorization server. Carries no secret (no token, code, client
    secret or assertion): ``reason`` is the machine word of a denial, ``metadata`` holds
    ``token_type``, ``sender_constraint`` (``dpop``/``mtls``), ``jti`` and the like.

    Subscribe from Pyramid with ``config.add_subscriber(handler, Event)``.
    """

    name: EventName
    client_id: str | None = None
    subject: str | None = None
    grant_type: str | None = None
    scope: str | None = None
    result: Literal["success", "failure"] = "success"
    reason: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


class EventSink(Protocol):
    """Receives every :class:`Event` (an audit log, metrics). Exceptions are logged and
    swallowed: an event sink never changes a protocol decision."""

    def on_event(self, event: Event) -> None:
        """Record ``event``; the return value is ignored."""
        ...


class NullEventSink:
    """The default :class:`EventSink`: discards events (Pyramid subscribers still see them)."""

    def on_event(self, event: Event) -> None:
        return None


@dataclass(frozen=True, slots=True)
class CatalogScopePolicy:
    """The default :class:`ScopePolicy` (see the module documentation).

    Wildcard grant forms are refused here (a client asks for concrete scopes); ``*`` is
    never granted on this surface.
    """

    catalog: ScopeCatalog

    def authorize_scope(
        self, client: Client, requested: Sequence[str], *, subject: str | None
    ) -> Sequence[str]:
        registered = parse_scope(client.scope) if client.scope else None
        if not requested:
            if not registered:
                raise InvalidScope("no scope was requested and none is registered", reason="empty")
            return registered
        # An empty catalog (no attesto.scopes_supported) leaves the registered scope as limit.
        unknown = [s for s in requested if self.catalog.scopes and s not in self.catalog]
        if unknown:
            raise InvalidScope("a requested scope is not supported", reason="unknown_scope")
        if registered is not None:
            allowed = GrantedScopes(registered)
            if not all(allowed.covers(s, self.catalog) for s in requested):
                raise InvalidScope(
                    "a requested scope is not registered for this client", reason="not_registered"
                )
        return tuple(requested)
