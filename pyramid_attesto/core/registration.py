"""Dynamic client registration: RFC 7591 §2, §3 and RFC 7592 §2 (read, update, delete).

:func:`parse_client_metadata` validates an RFC 7591 §2 metadata document (also the body of a
Client ID Metadata Document, :mod:`.cimd`); :class:`RegistrationService` registers a client,
reads it back, replaces its metadata and deletes it, with the host's
:class:`RegistrationStore`.

Metadata rules (an error is ``invalid_client_metadata`` or, for a redirect URI,
``invalid_redirect_uri``, RFC 7591 §3.2.2):

- ``redirect_uris``: required for the ``authorization_code`` grant; each checked by
  :func:`~.redirect_uris.validate_redirect_uri_for_registration` for the client's
  ``application_type``.
- ``application_type`` (OpenID Connect Registration §2): ``web`` or ``native``. RFC 7591 has
  no such member and several MCP clients do not send it while registering a loopback
  redirect, so when it is absent it is inferred: ``native`` when every redirect URI is a
  loopback ``http`` URI or a private-use scheme (RFC 8252 §7.1, §7.3), ``web`` otherwise.
- ``grant_types`` / ``response_types`` (RFC 7591 §2.1): ``authorization_code`` goes with the
  ``code`` response type and the other way round; only grants the server enables; the
  confidential-only grants (``client_credentials``, token exchange, jwt-bearer) need a
  confidential method. Defaults ``["authorization_code"]`` and ``["code"]`` (§2).
- ``token_endpoint_auth_method``: ``none``, ``client_secret_basic``, ``client_secret_post``
  or ``private_key_jwt`` (with ``jwks`` or ``jwks_uri``, not both, RFC 7591 §2). When the
  requested method is not enabled, a secret method is replaced by the other secret method
  or by ``none``, and the response names the method granted (RFC 7591 §3.2.1 lets the
  server replace values; connectors use what the response says, see "What real clients do"
  in DESIGN.md). Default ``client_secret_basic`` (§2).
- ``scope``: scope tokens that the catalog can grant; default: the configured default.
- ``client_name``, ``client_uri``, ``logo_uri``, ``tos_uri``, ``policy_uri``, ``contacts``,
  ``software_id``, ``software_version``, ``dpop_bound_access_tokens`` (RFC 9449 §5.2): typed
  and bounded; URIs are absolute ``https``.
- ``require_signed_request_object`` and ``request_object_signing_alg`` (RFC 9101 §10.5, OIDC
  Registration §2), ``authorization_signed_response_alg`` (JARM §3) and
  ``introspection_signed_response_alg`` (RFC 9701 §6): only algorithms the server enforces
  (:class:`RegistrationPolicy`); others are ``invalid_client_metadata``.
- A ``software_statement`` is not accepted (``unapproved_software_statement``). Unknown
  members are ignored and not echoed.

Secrets (DESIGN.md rule 4): the ``client_secret`` and the registration access token are
256-bit random values returned once and stored only as :func:`~.secret.hash_secret`.

An update (RFC 7592 §2.2) is a new registration request for the same client: the body goes
through :func:`parse_client_metadata` and the :class:`RegistrationGate` as a registration
does, and replaces the stored metadata (an omitted member takes its default, it does not keep
its old value). The body must name the client's ``client_id``; a ``client_secret`` in it must
be the current one; ``registration_access_token``, ``registration_client_uri``,
``client_secret_expires_at`` and ``client_id_issued_at`` must not be sent (the RFC says so of
the client and leaves the server's answer open: here it is ``invalid_request``, so that a
client echoing a whole read response learns of its mistake). The secret is kept; it is issued
only when the client moves from ``none`` or ``private_key_jwt`` to a secret method, and
dropped when it moves away from one. The registration access token is kept.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NotRequired, Protocol, TypedDict, cast
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .client_auth import SUPPORTED_ASSERTION_ALGORITHMS
from .clients import SECRET_METHODS, ApplicationType, AuthMethod, Client, ClientStore
from .clock import Clock
from .encoding import b64url_encode
from .errors import (
    InvalidClientMetadata,
    InvalidRedirectURI,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    TemporarilyUnavailable,
    UnapprovedSoftwareStatement,
)
from .host import Event, EventName
from .jwt_bearer import GRANT_TYPE as JWT_BEARER_GRANT
from .keys import SIGNING_ALGORITHMS
from .redirect_uris import validate_redirect_uri_for_registration
from .scopes import ScopeCatalog, format_scope, parse_scope
from .secret import constant_time_equals, generate_secret, hash_secret
from .token_exchange import GRANT_TYPE as TOKEN_EXCHANGE_GRANT

__all__ = [
    "CONFIDENTIAL_ONLY_GRANTS",
    "REGISTRABLE_AUTH_METHODS",
    "ClientMetadata",
    "DynamicClient",
    "HashedInitialAccessTokens",
    "InitialAccessTokens",
    "MemoryRegistrationStore",
    "RegisteredClientStore",
    "Registration",
    "RegistrationContext",
    "RegistrationGate",
    "RegistrationPolicy",
    "RegistrationResponse",
    "RegistrationService",
    "RegistrationStore",
    "infer_application_type",
    "parse_client_metadata",
]

REGISTRABLE_AUTH_METHODS: frozenset[AuthMethod] = frozenset(
    {"none", "client_secret_basic", "client_secret_post", "private_key_jwt"}
)
"""The methods a client may ask for at registration."""
CONFIDENTIAL_ONLY_GRANTS: frozenset[str] = frozenset(
    {"client_credentials", TOKEN_EXCHANGE_GRANT, JWT_BEARER_GRANT}
)
_KNOWN_GRANTS: Final = frozenset({"authorization_code", "refresh_token"}) | CONFIDENTIAL_ONLY_GRANTS

_MAX_URI: Final = 2048
_MAX_NAME: Final = 200
_MAX_CONTACTS: Final = 10
_MAX_KEYS: Final = 10
_MAX_SHORT: Final = 255
_PRIVATE_KEY_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})
_SERVER_MEMBERS: Final = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)
"""What the server provisions; RFC 7592 §2.2: an update request must not include them."""
_LOOPBACK_HTTP: Final = re.compile(r"\Ahttp://(?:127\.0\.0\.1|\[::1\]|localhost)(?:[:/?]|\Z)")
_PRIVATE_USE: Final = re.compile(r"\A[a-z][a-z0-9+\-]*(?:\.[a-z0-9+\-]+)+:")


def _invalid(description: str, reason: str) -> InvalidClientMetadata:
    return InvalidClientMetadata(description, reason=reason)


# -- the metadata ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DynamicClient(Client):
    """A client the server did not configure: registered at run time (RFC 7591) or resolved
    from a Client ID Metadata Document. Such clients are not pre-trusted (DESIGN.md D16):
    ``isinstance(client, DynamicClient)`` tells the authorization endpoint so."""

    source: Literal["registration", "metadata_document"] = "registration"
    client_uri: str | None = None
    logo_uri: str | None = None
    tos_uri: str | None = None
    policy_uri: str | None = None
    contacts: Sequence[str] = ()
    software_id: str | None = None
    software_version: str | None = None
    issued_at: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "contacts", tuple(self.contacts))


class _MetadataJSON(TypedDict, total=False):
    redirect_uris: list[str]
    token_endpoint_auth_method: str
    grant_types: list[str]
    response_types: list[str]
    application_type: str
    scope: str
    client_name: str
    client_uri: str
    logo_uri: str
    tos_uri: str
    policy_uri: str
    contacts: list[str]
    jwks: dict[str, Any]
    jwks_uri: str
    token_endpoint_auth_signing_alg: str
    id_token_signed_response_alg: str
    dpop_bound_access_tokens: bool
    software_id: str
    software_version: str
    require_signed_request_object: bool
    request_object_signing_alg: str
    authorization_signed_response_alg: str
    introspection_signed_response_alg: str


@dataclass(frozen=True, kw_only=True)
class ClientMetadata:
    """Validated client metadata, with the server's substitutions applied."""

    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: AuthMethod
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    application_type: ApplicationType
    scope: str | None = None
    client_name: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    tos_uri: str | None = None
    policy_uri: str | None = None
    contacts: tuple[str, ...] = ()
    jwks: Mapping[str, Any] | None = field(default=None, hash=False)
    jwks_uri: str | None = None
    token_endpoint_auth_signing_alg: str | None = None
    id_token_signed_response_alg: str | None = None
    dpop_bound_access_tokens: bool = False
    software_id: str | None = None
    software_version: str | None = None
    require_signed_request_object: bool = False
    request_object_signing_alg: str | None = None
    authorization_signed_response_alg: str | None = None
    introspection_signed_response_alg: str | None = None

    @property
    def confidential(self) -> bool:
        return self.token_endpoint_auth_method != "none"  # noqa: S105

    def to_client(
        self,
        client_id: str,
        *,
        source: Literal["registration", "metadata_document"] = "registration",
        issued_at: int = 0,
    ) -> DynamicClient:
        """The :class:`~.clients.Client` these metadata describe."""
        return DynamicClient(
            client_id=client_id,
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            redirect_uris=self.redirect_uris,
            grant_types=self.grant_types,
            response_types=self.response_types,
            scope=self.scope,
            application_type=self.application_type,
            jwks=self.jwks,
            jwks_uri=self.jwks_uri,
            token_endpoint_auth_signing_alg=self.token_endpoint_auth_signing_alg,
            id_token_signed_response_alg=self.id_token_signed_response_alg or "RS256",
            dpop_bound_access_tokens=self.dpop_bound_access_tokens,
            client_name=self.client_name,
            require_signed_request_object=self.require_signed_request_object,
            request_object_signing_alg=self.request_object_signing_alg,
            authorization_signed_response_alg=self.authorization_signed_response_alg,
            introspection_signed_response_alg=self.introspection_signed_response_alg,
            source=source,
            client_uri=self.client_uri,
            logo_uri=self.logo_uri,
            tos_uri=self.tos_uri,
            policy_uri=self.policy_uri,
            contacts=self.contacts,
            software_id=self.software_id,
            software_version=self.software_version,
            issued_at=issued_at,
        )

    def to_json(self) -> _MetadataJSON:
        """The metadata members of an RFC 7591 §3.2.1 response (only those that are set)."""
        body: _MetadataJSON = {
            "redirect_uris": list(self.redirect_uris),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "grant_types": list(self.grant_types),
            "response_types": list(self.response_types),
            "application_type": self.application_type,
        }
        optional: dict[str, Any] = {
            "scope": self.scope,
            "client_name": self.client_name,
            "client_uri": self.client_uri,
            "logo_uri": self.logo_uri,
            "tos_uri": self.tos_uri,
            "policy_uri": self.policy_uri,
            "contacts": list(self.contacts) or None,
            "jwks": dict(self.jwks) if self.jwks is not None else None,
            "jwks_uri": self.jwks_uri,
            "token_endpoint_auth_signing_alg": self.token_endpoint_auth_signing_alg,
            "id_token_signed_response_alg": self.id_token_signed_response_alg,
            "dpop_bound_access_tokens": self.dpop_bound_access_tokens or None,
            "software_id": self.software_id,
            "software_version": self.software_version,
            "require_signed_request_object": self.require_signed_request_object or None,
            "request_object_signing_alg": self.request_object_signing_alg,
            "authorization_signed_response_alg": self.authorization_signed_response_alg,
            "introspection_signed_response_alg": self.introspection_signed_response_alg,
        }
        merged = cast(dict[str, Any], body)
        merged.update({k: v for k, v in optional.items() if v is not None})
        return body

    @classmethod
    def of_client(cls, client: Client) -> ClientMetadata:
        """The metadata of a stored :class:`DynamicClient` (RFC 7592 read)."""
        extra = client if isinstance(client, DynamicClient) else None
        return cls(
            redirect_uris=tuple(client.redirect_uris),
            token_endpoint_auth_method=client.token_endpoint_auth_method,
            grant_types=tuple(client.grant_types),
            response_types=tuple(client.response_types),
            application_type=client.application_type,
            scope=client.scope,
            client_name=client.client_name,
            client_uri=extra.client_uri if extra else None,
            logo_uri=extra.logo_uri if extra else None,
            tos_uri=extra.tos_uri if extra else None,
            policy_uri=extra.policy_uri if extra else None,
            contacts=tuple(extra.contacts) if extra else (),
            jwks=client.jwks,
            jwks_uri=client.jwks_uri,
            token_endpoint_auth_signing_alg=client.token_endpoint_auth_signing_alg,
            id_token_signed_response_alg=client.id_token_signed_response_alg,
            dpop_bound_access_tokens=client.dpop_bound_access_tokens,
            software_id=extra.software_id if extra else None,
            software_version=extra.software_version if extra else None,
            require_signed_request_object=client.require_signed_request_object,
            request_object_signing_alg=client.request_object_signing_alg,
            authorization_signed_response_alg=client.authorization_signed_response_alg,
            introspection_signed_response_alg=client.introspection_signed_response_alg,
        )


@dataclass(frozen=True, kw_only=True)
class RegistrationPolicy:
    """What registration accepts.

    ``auth_methods``: the methods granted (a subset of :data:`REGISTRABLE_AUTH_METHODS`;
    keep it within what the token endpoint accepts). ``grant_types``: the grants a
    registered client may have. ``catalog``: the scopes a client may register (empty: any
    well-formed scope). ``default_scope``: registered when the request names none.
    ``allow_localhost``: ``http://localhost`` loopback redirects (RFC 8252 §8.3).
    ``client_secret_ttl``: seconds until an issued secret expires (0: never).
    ``registration_endpoint``: the URL of the registration endpoint; RFC 7592 client
    configuration URIs are ``{registration_endpoint}/{client_id}``.

    The signing algorithms a client may register are those the server enforces (empty: the
    feature is off and the member is refused): ``request_object_algorithms`` for
    ``request_object_signing_alg`` and ``require_signed_request_object`` (RFC 9101 §10.5),
    ``authorization_signing_algorithms`` for ``authorization_signed_response_alg`` (JARM §3),
    ``introspection_signing_algorithms`` for ``introspection_signed_response_alg``
    (RFC 9701 §6).
    """

    registration_endpoint: str
    auth_methods: frozenset[AuthMethod] = REGISTRABLE_AUTH_METHODS
    grant_types: frozenset[str] = frozenset({"authorization_code", "refresh_token"})
    catalog: ScopeCatalog = field(default_factory=lambda: ScopeCatalog.of(()))
    default_scope: str | None = None
    allow_localhost: bool = True
    client_secret_ttl: int = 0
    max_redirect_uris: int = 10
    request_object_algorithms: frozenset[str] = frozenset()
    authorization_signing_algorithms: frozenset[str] = frozenset()
    introspection_signing_algorithms: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = set(self.auth_methods) - REGISTRABLE_AUTH_METHODS
        if unknown or not self.auth_methods:
            raise ValueError(f"registration auth methods must be within {REGISTRABLE_AUTH_METHODS}")
        if set(self.grant_types) - _KNOWN_GRANTS:
            raise ValueError(f"unknown grant types {sorted(set(self.grant_types) - _KNOWN_GRANTS)}")
        if self.client_secret_ttl < 0 or self.max_redirect_uris < 1:
            raise ValueError("registration limits must be positive")


def infer_application_type(redirect_uris: Iterable[str]) -> ApplicationType:
    """``native`` when every redirect URI is a loopback ``http`` URI or a private-use scheme
    (RFC 8252 §7.1, §7.3), ``web`` otherwise (and for no redirect URI at all)."""
    uris = list(redirect_uris)
    if uris and all(_LOOPBACK_HTTP.match(u) or _PRIVATE_USE.match(u) for u in uris):
        return "native"
    return "web"


class _Reader:
    """Typed reads of the request members; every failure is ``invalid_client_metadata``."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body

    def string(self, name: str, limit: int = _MAX_SHORT) -> str | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value or len(value) > limit:
            raise _invalid(f"{name} must be a non-empty string", f"bad_{name}")
        if not value.isprintable():
            raise _invalid(f"{name} has control characters", f"bad_{name}")
        return value

    def strings(self, name: str, limit: int) -> tuple[str, ...] | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) > limit:
            raise _invalid(f"{name} must be an array of at most {limit} strings", f"bad_{name}")
        if not all(isinstance(v, str) and v for v in value):
            raise _invalid(f"{name} must be an array of non-empty strings", f"bad_{name}")
        return tuple(dict.fromkeys(value))

    def https_uri(self, name: str) -> str | None:
        value = self.string(name, _MAX_URI)
        if value is None:
            return None
        if not _is_https_uri(value):
            raise _invalid(f"{name} must be an absolute https URI", f"bad_{name}")
        return value

    def boolean(self, name: str) -> bool:
        value = self.body.get(name, False)
        if not isinstance(value, bool):
            raise _invalid(f"{name} must be a boolean", f"bad_{name}")
        return value


def _is_https_uri(value: str) -> bool:
    if not value.isascii() or any(c <= " " or c in "\\#" for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and parts.username is None
        and parts.password is None
    )


def parse_client_metadata(
    body: object,
    policy: RegistrationPolicy,
    *,
    default_auth_method: AuthMethod = "client_secret_basic",
    substitute_auth_method: bool = True,
) -> ClientMetadata:
    """Validate RFC 7591 §2 client metadata (the rules are in the module documentation)."""
    if not isinstance(body, Mapping):
        raise _invalid("the client metadata must be a JSON object", "not_an_object")
    if body.get("software_statement") is not None:
        raise UnapprovedSoftwareStatement(
            "software statements are not accepted here", reason="software_statement"
        )
    read = _Reader(body)
    method = _auth_method(read, policy, default_auth_method, substitute_auth_method)
    jwks, jwks_uri = _keys(read, method)
    grants, responses = _grants(read, policy, method)
    redirect_uris = read.strings("redirect_uris", policy.max_redirect_uris) or ()
    if not redirect_uris and "authorization_code" in grants:
        raise InvalidRedirectURI(
            "redirect_uris is required for the authorization_code grant", reason="missing"
        )
    application_type = _application_type(read, redirect_uris)
    for uri in redirect_uris:
        validate_redirect_uri_for_registration(
            uri, application_type, allow_localhost=policy.allow_localhost
        )
    return ClientMetadata(
        redirect_uris=redirect_uris,
        token_endpoint_auth_method=method,
        grant_types=grants,
        response_types=responses,
        application_type=application_type,
        scope=_scope(read, policy),
        client_name=read.string("client_name", _MAX_NAME),
        client_uri=read.https_uri("client_uri"),
        logo_uri=read.https_uri("logo_uri"),
        tos_uri=read.https_uri("tos_uri"),
        policy_uri=read.https_uri("policy_uri"),
        contacts=read.strings("contacts", _MAX_CONTACTS) or (),
        jwks=jwks,
        jwks_uri=jwks_uri,
        token_endpoint_auth_signing_alg=_choice(
            read, "token_endpoint_auth_signing_alg", SUPPORTED_ASSERTION_ALGORITHMS
        ),
        id_token_signed_response_alg=_choice(
            read, "id_token_signed_response_alg", frozenset(SIGNING_ALGORITHMS)
        ),
        dpop_bound_access_tokens=read.boolean("dpop_bound_access_tokens"),
        software_id=read.string("software_id"),
        software_version=read.string("software_version"),
        require_signed_request_object=_require_signed(read, policy),
        request_object_signing_alg=_choice(
            read, "request_object_signing_alg", policy.request_object_algorithms
        ),
        authorization_signed_response_alg=_choice(
            read, "authorization_signed_response_alg", policy.authorization_signing_algorithms
        ),
        introspection_signed_response_alg=_choice(
            read, "introspection_signed_response_alg", policy.introspection_signing_algorithms
        ),
    )


def _require_signed(read: _Reader, policy: RegistrationPolicy) -> bool:
    required = read.boolean("require_signed_request_object")
    if required and not policy.request_object_algorithms:
        # RFC 9101 §10.5: a promise the server could not keep is refused, not ignored.
        raise _invalid(
            "request objects are not supported here", "bad_require_signed_request_object"
        )
    return required


def _auth_method(
    read: _Reader, policy: RegistrationPolicy, default: AuthMethod, substitute: bool
) -> AuthMethod:
    requested = read.string("token_endpoint_auth_method") or default
    if requested not in REGISTRABLE_AUTH_METHODS:
        raise _invalid("token_endpoint_auth_method is not supported", "unsupported_auth_method")
    method: AuthMethod = requested
    if method in policy.auth_methods:
        return method
    if substitute and method in SECRET_METHODS:
        # RFC 7591 §3.2.1: the server may replace a value; the client uses what it is told.
        for alternative in ("client_secret_basic", "client_secret_post", "none"):
            if alternative in policy.auth_methods:
                return cast(AuthMethod, alternative)
    raise _invalid("token_endpoint_auth_method is not allowed here", "auth_method_not_allowed")


def _keys(read: _Reader, method: AuthMethod) -> tuple[Mapping[str, Any] | None, str | None]:
    jwks_uri = read.https_uri("jwks_uri")
    jwks = read.body.get("jwks")
    if jwks is not None and jwks_uri is not None:
        raise _invalid("jwks and jwks_uri must not both be present (RFC 7591 2)", "jwks_and_uri")
    if jwks is not None:
        _check_jwks(jwks)
    if method == "private_key_jwt" and jwks is None and jwks_uri is None:
        raise _invalid("private_key_jwt needs jwks or jwks_uri", "no_keys")
    return jwks, jwks_uri


def _check_jwks(jwks: object) -> None:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys or len(keys) > _MAX_KEYS:
        raise _invalid(f"jwks must be a JWK Set of 1 to {_MAX_KEYS} keys", "bad_jwks")
    if not all(isinstance(k, dict) for k in keys):
        raise _invalid("jwks must be a JWK Set", "bad_jwks")
    if any(_PRIVATE_KEY_MEMBERS & set(key) for key in keys):
        raise _invalid("jwks must hold public keys only", "private_key_in_jwks")
    try:
        KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError, KeyError):
        raise _invalid("jwks holds a key that cannot be imported", "bad_jwks") from None


def _grants(
    read: _Reader, policy: RegistrationPolicy, method: AuthMethod
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    grants = read.strings("grant_types", 8)
    responses = read.strings("response_types", 4)
    if grants is None:
        grants = ("authorization_code",)
    if responses is None:
        responses = ("code",) if "authorization_code" in grants else ()
    for grant in grants:
        if grant not in _KNOWN_GRANTS or grant not in policy.grant_types:
            raise _invalid("a grant type is not supported for registered clients", "grant_type")
    if method == "none" and CONFIDENTIAL_ONLY_GRANTS & set(grants):
        raise _invalid("a public client cannot use that grant type", "public_client_grant")
    if any(r != "code" for r in responses):
        raise _invalid("only the code response type is supported", "response_type")
    # RFC 7591 §2.1: authorization_code goes with code, and code with authorization_code.
    if ("authorization_code" in grants) != ("code" in responses):
        raise _invalid("grant_types and response_types are inconsistent", "inconsistent_types")
    if "refresh_token" in grants and len(grants) == 1:
        raise _invalid("refresh_token needs another grant type", "inconsistent_types")
    return grants, responses


def _application_type(read: _Reader, redirect_uris: tuple[str, ...]) -> ApplicationType:
    value = read.string("application_type")
    if value is None:
        return infer_application_type(redirect_uris)
    if value not in ("web", "native"):
        raise _invalid("application_type must be web or native", "application_type")
    return cast(ApplicationType, value)


def _scope(read: _Reader, policy: RegistrationPolicy) -> str | None:
    value = read.string("scope", 4096)
    if value is None:
        return policy.default_scope
    try:
        scopes = parse_scope(value)
    except InvalidScope:
        raise _invalid("scope is not a list of scope tokens", "bad_scope") from None
    if policy.catalog.scopes and policy.catalog.grant_form_errors(scopes):
        raise _invalid("scope names a scope this server does not offer", "unknown_scope")
    return format_scope(scopes) or policy.default_scope


def _choice(read: _Reader, name: str, allowed: frozenset[str]) -> str | None:
    value = read.string(name)
    if value is not None and value not in allowed:
        raise _invalid(f"{name} is not supported", f"bad_{name}")
    return value


# -- storage and host hooks ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registration:
    """A registered client as stored: the client and the hashes of its credentials."""

    client: DynamicClient
    registration_token_hash: str
    secret_hash: str | None = None
    secret_expires_at: int = 0
    """Epoch seconds when the secret expires; 0 when it does not (RFC 7591 §3.2.1)."""

    @property
    def client_id(self) -> str:
        return self.client.client_id


class RegistrationStore(Protocol):
    """Where dynamically registered clients live (the host's table, or
    :class:`MemoryRegistrationStore` for a single process)."""

    def store(self, registration: Registration) -> None:
        """Keep ``registration``. Raise :class:`~.errors.TemporarilyUnavailable` when full."""
        ...

    def load(self, client_id: str) -> Registration | None:
        """The registration of ``client_id``, or ``None``."""
        ...

    def update(self, registration: Registration) -> bool:
        """Replace the registration of a client that is there (RFC 7592 §2.2); ``False``,
        storing nothing, when it is not (deleted meanwhile)."""
        ...

    def delete(self, client_id: str) -> bool:
        """Forget ``client_id``; whether it was there."""
        ...


class MemoryRegistrationStore:
    """A bounded, thread-safe :class:`RegistrationStore` for one process. When full it
    refuses new registrations (DESIGN.md D18) rather than dropping existing clients."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._entries: dict[str, Registration] = {}
        self._lock = threading.Lock()

    def store(self, registration: Registration) -> None:
        with self._lock:
            if registration.client_id not in self._entries and len(self._entries) >= self._capacity:
                raise TemporarilyUnavailable(
                    "no more clients can be registered now", reason="registration_store_full"
                )
            self._entries[registration.client_id] = registration

    def load(self, client_id: str) -> Registration | None:
        return self._entries.get(client_id)

    def update(self, registration: Registration) -> bool:
        with self._lock:
            if registration.client_id not in self._entries:
                return False
            self._entries[registration.client_id] = registration
            return True

    def delete(self, client_id: str) -> bool:
        with self._lock:
            return self._entries.pop(client_id, None) is not None

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class RegistrationContext:
    """What a :class:`RegistrationGate` may decide on besides the metadata. ``client_id`` is
    set when the metadata replace those of a registered client (RFC 7592 §2.2), ``None`` for
    a new registration."""

    remote_addr: str | None = None
    initial_access_token_used: bool = False
    client_id: str | None = None


class RegistrationGate(Protocol):
    """The host's policy and rate limit for registration and for updates (DESIGN.md D18,
    RFC 7592 §2.2; ``context.client_id`` tells them apart): raise an
    :class:`~.errors.OAuthError` to refuse (``invalid_client_metadata`` for a policy,
    ``TemporarilyUnavailable(status=429)`` for a rate limit); return to accept."""

    def check_registration(self, metadata: ClientMetadata, context: RegistrationContext) -> None:
        """Refuse by raising; the return value is ignored."""
        ...


class InitialAccessTokens(Protocol):
    """Verifies an RFC 7591 §3 initial access token."""

    def verify(self, token: str) -> bool: ...


class HashedInitialAccessTokens:
    """Initial access tokens configured by their :func:`~.secret.hash_secret` values."""

    def __init__(self, hashes: Iterable[str]) -> None:
        self._hashes = tuple(hashes)
        if not self._hashes:
            raise ValueError("at least one initial access token hash is needed")

    def verify(self, token: str) -> bool:
        presented = hash_secret(token)
        found = False
        for expected in self._hashes:  # no early exit: each comparison costs the same
            found |= constant_time_equals(presented, expected)
        return found


class RegisteredClientStore:
    """A :class:`~.clients.ClientStore` that answers for the host's clients first and then
    for the dynamically registered ones, verifying their secrets against the stored hash."""

    def __init__(
        self, registrations: RegistrationStore, clock: Clock, host: ClientStore | None = None
    ) -> None:
        self._registrations = registrations
        self._clock = clock
        self._host = host

    def load_client(self, client_id: str) -> Client | None:
        if self._host is not None:
            client = self._host.load_client(client_id)
            if client is not None:
                return client
        found = self._registrations.load(client_id)
        return found.client if found is not None else None

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        if not isinstance(client, DynamicClient):
            return self._host is not None and self._host.verify_client_secret(client, secret)
        found = self._registrations.load(client.client_id)
        if found is None or found.secret_hash is None:
            return False
        if found.secret_expires_at and self._clock.now() >= found.secret_expires_at:
            return False
        return constant_time_equals(hash_secret(secret), found.secret_hash)

    def client_secret_for_jwt(self, client: Client) -> str | None:
        if isinstance(client, DynamicClient) or self._host is None:
            return None
        return self._host.client_secret_for_jwt(client)


# -- the service -----------------------------------------------------------------------------


class RegistrationResponse(TypedDict):
    """RFC 7591 §3.2.1 (``metadata`` is merged into the JSON body by :meth:`body`)."""

    client_id: str
    client_id_issued_at: int
    registration_access_token: NotRequired[str]
    registration_client_uri: str
    client_secret: NotRequired[str]
    client_secret_expires_at: NotRequired[int]


def _new_client_id() -> str:
    return b64url_encode(secrets.token_bytes(18))


class RegistrationService:
    """RFC 7591 registration and RFC 7592 read / update / delete, framework-free.

    ``initial_access_tokens`` set: every registration needs ``Authorization: Bearer`` with
    one of them (RFC 7591 §3); otherwise registration is open and the ``gate`` (rate limit,
    policy) is the only brake. ``emit`` receives ``client_registered``, ``client_updated``
    and ``client_deleted`` events (no secret in them).
    """

    def __init__(
        self,
        policy: RegistrationPolicy,
        store: RegistrationStore,
        *,
        clock: Clock,
        gate: RegistrationGate | None = None,
        initial_access_tokens: InitialAccessTokens | None = None,
        emit: Callable[[Event], None] | None = None,
    ) -> None:
        self.policy = policy
        self._store = store
        self._clock = clock
        self._gate = gate
        self._initial = initial_access_tokens
        self._emit = emit

    def client_uri(self, client_id: str) -> str:
        return f"{self.policy.registration_endpoint}/{client_id}"

    def register(
        self,
        body: object,
        *,
        initial_access_token: str | None = None,
        remote_addr: str | None = None,
    ) -> dict[str, Any]:
        """Register a client; the RFC 7591 §3.2.1 response body (sent with 201)."""
        if self._initial is not None and (
            initial_access_token is None or not self._initial.verify(initial_access_token)
        ):
            raise InvalidToken(
                "a valid initial access token is required", reason="initial_access_token"
            )
        metadata = parse_client_metadata(body, self.policy)
        if self._gate is not None:
            self._gate.check_registration(
                metadata,
                RegistrationContext(
                    remote_addr=remote_addr,
                    initial_access_token_used=initial_access_token is not None,
                ),
            )
        now = int(self._clock.now())
        client_id = _new_client_id()
        access_token = generate_secret()
        secret, secret_hash, secret_expires_at = None, None, 0
        if metadata.token_endpoint_auth_method in SECRET_METHODS:
            secret, secret_hash, secret_expires_at = self._new_secret(now)
        registration = Registration(
            client=metadata.to_client(client_id, issued_at=now),
            registration_token_hash=hash_secret(access_token),
            secret_hash=secret_hash,
            secret_expires_at=secret_expires_at,
        )
        self._store.store(registration)
        self._event("client_registered", metadata, client_id, secret_issued=secret is not None)
        return self._information(registration, access_token=access_token, secret=secret)

    def _authorized(self, client_id: str, access_token: str | None) -> Registration:
        """RFC 7592 §2: the registration access token of this client, else 401."""
        if not access_token:
            raise InvalidToken("the registration access token is missing", reason="missing")
        found = self._store.load(client_id) if len(client_id) <= 256 else None
        expected = found.registration_token_hash if found is not None else hash_secret("")
        # Compare even when the client is unknown, so both failures cost the same.
        if not constant_time_equals(hash_secret(access_token), expected) or found is None:
            raise InvalidToken(
                "the registration access token is invalid", reason="invalid_registration_token"
            )
        return found

    def read(self, client_id: str, access_token: str | None) -> dict[str, Any]:
        """RFC 7592 §2.1: the client's current registration (without its secret, which is
        kept only as a hash), with the registration access token presented (RFC 7592 §3:
        REQUIRED in the client information response; it is not rotated)."""
        registration = self._authorized(client_id, access_token)
        return self._information(registration, access_token=access_token)

    def update(
        self,
        client_id: str,
        access_token: str | None,
        body: object,
        *,
        remote_addr: str | None = None,
    ) -> dict[str, Any]:
        """RFC 7592 §2.2: replace the client's metadata with ``body`` (the rules are in the
        module documentation); the client information response (sent with 200). On any
        error the stored registration is unchanged."""
        current = self._authorized(client_id, access_token)
        if not isinstance(body, Mapping):
            raise _invalid("the client metadata must be a JSON object", "not_an_object")
        _check_update_request(body, current)
        metadata = parse_client_metadata(body, self.policy)
        if self._gate is not None:
            self._gate.check_registration(
                metadata, RegistrationContext(remote_addr=remote_addr, client_id=client_id)
            )
        secret, secret_hash, secret_expires_at = None, None, 0
        if metadata.token_endpoint_auth_method in SECRET_METHODS:
            secret_hash, secret_expires_at = current.secret_hash, current.secret_expires_at
            if secret_hash is None:  # from none or private_key_jwt to a secret method
                secret, secret_hash, secret_expires_at = self._new_secret(int(self._clock.now()))
        registration = Registration(
            client=metadata.to_client(client_id, issued_at=current.client.issued_at),
            registration_token_hash=current.registration_token_hash,
            secret_hash=secret_hash,
            secret_expires_at=secret_expires_at,
        )
        if not self._store.update(registration):
            # RFC 7592 §2.2: a client that no longer exists is 401 (deleted meanwhile).
            raise InvalidToken(
                "the registration access token is invalid", reason="invalid_registration_token"
            )
        self._event("client_updated", metadata, client_id, secret_issued=secret is not None)
        # RFC 7592 §3: the response carries the registration access token; it is unchanged.
        return self._information(registration, access_token=access_token, secret=secret)

    def delete(self, client_id: str, access_token: str | None) -> None:
        """RFC 7592 §2.3: deprovision the client (the view answers 204)."""
        found = self._authorized(client_id, access_token)
        if self._store.delete(found.client_id) and self._emit is not None:
            self._emit(Event("client_deleted", client_id=found.client_id))

    def _new_secret(self, now: int) -> tuple[str, str, int]:
        """A new client secret, its hash and when it expires (0: never)."""
        secret = generate_secret()
        ttl = self.policy.client_secret_ttl
        return secret, hash_secret(secret), now + ttl if ttl else 0

    def _information(
        self,
        registration: Registration,
        *,
        access_token: str | None = None,
        secret: str | None = None,
    ) -> dict[str, Any]:
        """The client information response (RFC 7591 §3.2.1, RFC 7592 §3): the credentials
        given (they are known only when just issued or presented), then the metadata."""
        client = registration.client
        response: dict[str, Any] = {
            "client_id": client.client_id,
            "client_id_issued_at": client.issued_at,
        }
        if access_token is not None:
            response["registration_access_token"] = access_token
        response["registration_client_uri"] = self.client_uri(client.client_id)
        if secret is not None:
            response["client_secret"] = secret
        if registration.secret_hash is not None:
            response["client_secret_expires_at"] = registration.secret_expires_at
        response.update(ClientMetadata.of_client(client).to_json())
        return response

    def _event(
        self, name: EventName, metadata: ClientMetadata, client_id: str, *, secret_issued: bool
    ) -> None:
        if self._emit is None:
            return
        details = {
            "token_endpoint_auth_method": metadata.token_endpoint_auth_method,
            "secret_issued": secret_issued,
        }
        self._emit(Event(name, client_id=client_id, scope=metadata.scope, metadata=details))


def _check_update_request(body: Mapping[str, Any], current: Registration) -> None:
    """The RFC 7592 §2.2 members of an update request that are not metadata. A ``null``
    member counts as omitted, as §2.2 treats omitted members as null."""
    for name in _SERVER_MEMBERS:
        if body.get(name) is not None:
            raise InvalidRequest(
                f"{name} must not be sent in an update (RFC 7592 2.2)", reason="server_member"
            )
    if body.get("client_id") != current.client_id:
        raise InvalidRequest(
            "client_id must be the identifier of the client being updated (RFC 7592 2.2)",
            reason="client_id_mismatch",
        )
    presented = body.get("client_secret")
    if presented is None:
        return
    expected = current.secret_hash
    # Issued secrets are base64url: anything else (a lone surrogate too) cannot match.
    usable = isinstance(presented, str) and presented.isascii() and bool(presented)
    given = hash_secret(presented) if usable else ""
    # Compare even when the client has no secret, so every refusal costs the same.
    matches = constant_time_equals(given, expected or hash_secret(""))
    if not matches or expected is None:
        raise InvalidRequest(
            "client_secret is not the client's current secret (RFC 7592 2.2)",
            reason="client_secret_mismatch",
        )
