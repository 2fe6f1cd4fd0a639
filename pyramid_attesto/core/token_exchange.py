"""OAuth 2.0 Token Exchange (RFC 8693) at the token endpoint.

:func:`exchange_token` decides what token an exchange yields; the token endpoint mints it
(:class:`~.tokens.AccessTokenMinter`), claims the DPoP proof's replay and renders the
RFC 8693 §2.2.1 response with ``issued_token_type`` and a usable ``token_type`` (``Bearer``
or ``DPoP``, never ``N_A`` for an access token, see "What real clients do" in DESIGN.md).

Rules:

- Confidential clients only, registered for the grant
  (``urn:ietf:params:oauth:grant-type:token-exchange``): ``unauthorized_client``.
- ``subject_token`` and ``subject_token_type`` are required; ``actor_token_type`` is required
  with an ``actor_token`` and forbidden without one (§2.1). A parameter sent twice is
  ``invalid_request`` (RFC 6749 §3.2).
- Token types are validated by :class:`TokenValidator` hooks keyed by type URI; our own
  access tokens (:data:`ACCESS_TOKEN_TYPE`) by :class:`OwnAccessTokens`. An unknown type, and
  every invalid or unacceptable subject or actor token, is ``invalid_request`` (§2.2.2 MUST).
- ``requested_token_type``: only access tokens are issued (``invalid_request`` otherwise), and
  ``issued_token_type`` says so.
- ``resource`` and ``audience`` (§2.1, RFC 8707) together name at most one target (one
  audience per token, DESIGN.md rule 8), which must be an audience of the subject token;
  without one, the subject token's only audience: ``invalid_target`` otherwise (§2.2.2).
  ``scope`` only narrows the subject token's scope (:func:`~.scopes.narrow`).
- Delegation (§4.1, §4.4): with an ``actor_token`` the new token carries ``act`` naming the
  actor, with any ``act`` of the subject token nested inside it (the prior chain); without
  one, the subject token's ``act`` is kept as it was. A subject token with ``may_act`` may
  only be exchanged by the party it names: the actor token's ``sub`` (and ``iss``), or the
  requesting client when no actor token is sent.
- Sender constraint (D9, :func:`~.binding.bind_token`): a DPoP- or certificate-bound subject
  or actor token needs the same key on this request, and the new token is bound to it.
- The new token never outlives the subject token (:attr:`TokenExchangeGrant.max_lifetime`).
- The host's :class:`ExchangePolicy` runs last and may narrow the scope or refuse
  (``invalid_request``, reason ``policy``); what it returns is checked again.
- No refresh token is issued.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from .binding import PresentedKeys, TokenBinding, bind_token
from .clients import Client
from .clock import Clock
from .errors import (
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    UnauthorizedClient,
)
from .scopes import GrantedScopes, ScopeCatalog, narrow, parse_scope
from .stores import RevokedAccessTokenStore
from .tokens import AccessTokenClaims, AccessTokenVerifier

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "GRANT_TYPE",
    "ID_JAG_TOKEN_TYPE",
    "ID_TOKEN_TYPE",
    "JWT_TOKEN_TYPE",
    "REFRESH_TOKEN_TYPE",
    "ExchangePolicy",
    "ExchangeRequest",
    "OwnAccessTokens",
    "TokenExchangeConfig",
    "TokenExchangeGrant",
    "TokenValidator",
    "ValidatedToken",
    "exchange_token",
]

GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
REFRESH_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:refresh_token"  # noqa: S105
ID_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
JWT_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105
ID_JAG_TOKEN_TYPE: Final = "urn:ietf:params:oauth:token-type:id-jag"  # noqa: S105

_MAX_TARGET: Final = 2048
_MAX_ACT_DEPTH: Final = 8

Form = Mapping[str, Sequence[str]]


@dataclass(frozen=True, kw_only=True)
class ValidatedToken:
    """A subject or actor token that verified (RFC 8693 §2.1), whatever its type."""

    token_type: str
    subject: str
    issuer: str
    client_id: str | None = None
    scopes: tuple[str, ...] = ()
    audience: tuple[str, ...] = ()
    expires_at: int | None = None
    cnf: Mapping[str, Any] | None = None
    act: Mapping[str, Any] | None = None
    may_act: Mapping[str, Any] | None = None
    principal_kind: str | None = None
    auth_time: int | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)


class TokenValidator(Protocol):
    """Validates one kind of token; raise an :class:`~.errors.OAuthError` (any class: it is
    reported as ``invalid_request``) when it is invalid or unacceptable."""

    def __call__(self, token: str, token_type: str) -> ValidatedToken: ...


def _optional_object(claims: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"the token's {name} claim is not an object", reason=f"bad_{name}")
    return value


class OwnAccessTokens:
    """:class:`TokenValidator` for the access tokens this server issued (RFC 9068): the
    verifier names every audience this server issues for; ``revoked``, when given, is the
    access-token denylist (D12)."""

    def __init__(
        self, verifier: AccessTokenVerifier, revoked: RevokedAccessTokenStore | None = None
    ) -> None:
        self._verifier = verifier
        self._revoked = revoked

    def with_denylist(self, revoked: RevokedAccessTokenStore) -> OwnAccessTokens:
        """This validator, consulting ``revoked`` (a request's store) as well."""
        return OwnAccessTokens(self._verifier, revoked)

    def __call__(self, token: str, token_type: str) -> ValidatedToken:
        verified = self._verifier.verify(token)
        if self._revoked is not None and self._revoked.is_revoked(verified.jti):
            raise InvalidRequest("the token has been revoked", reason="revoked")
        return ValidatedToken(
            token_type=token_type,
            subject=verified.subject,
            issuer=verified.issuer,
            client_id=verified.client_id,
            scopes=verified.scopes,
            audience=verified.audience,
            expires_at=verified.expires_at,
            cnf=verified.cnf,
            act=_optional_object(verified.claims, "act"),
            may_act=_optional_object(verified.claims, "may_act"),
            principal_kind=verified.principal_kind,
            auth_time=verified.auth_time,
            acr=verified.acr,
            amr=verified.amr,
            claims=verified.claims,
        )


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """What the host's :class:`ExchangePolicy` decides on."""

    subject: ValidatedToken
    actor: ValidatedToken | None
    audience: str
    scopes: tuple[str, ...]
    requested_token_type: str


class ExchangePolicy(Protocol):
    """The host's say on an exchange: return the scopes to grant (a subset of
    ``exchange.scopes``), or ``None`` to refuse."""

    def authorize_exchange(self, client: Client, exchange: ExchangeRequest) -> Sequence[str] | None:
        """The granted scopes, or ``None``."""
        ...


@dataclass(frozen=True, kw_only=True)
class TokenExchangeConfig:
    """The server's token exchange: its issuer, the validators by token type, the scope
    catalog (for wildcard narrowing) and an optional host policy."""

    issuer: str
    validators: Mapping[str, TokenValidator]
    catalog: ScopeCatalog = field(default_factory=lambda: ScopeCatalog.of(()))
    policy: ExchangePolicy | None = None


@dataclass(frozen=True, slots=True)
class TokenExchangeGrant:
    """The token an exchange yields: the claims to mint, its binding, its
    ``issued_token_type``, and how long it may live at most (the subject token's remaining
    lifetime, ``None``: no bound)."""

    claims: AccessTokenClaims
    binding: TokenBinding
    issued_token_type: str
    max_lifetime: int | None
    subject: ValidatedToken
    actor: ValidatedToken | None

    @property
    def token_type(self) -> str:
        return self.binding.token_type


def _single(form: Form, name: str) -> str | None:
    values = form.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"the {name} parameter is repeated", reason="repeated_parameter")
    return values[0] or None


def _required(form: Form, name: str) -> str:
    value = _single(form, name)
    if value is None:
        raise InvalidRequest(f"the {name} parameter is required", reason=f"missing_{name}")
    return value


def _validate(
    config: TokenExchangeConfig, token: str, token_type: str, role: str
) -> ValidatedToken:
    validator = config.validators.get(token_type)
    if validator is None:
        raise InvalidRequest(
            f"the {role}_token_type is not supported", reason="unsupported_token_type"
        )
    try:
        return validator(token, token_type)
    except OAuthError as error:
        # RFC 8693 §2.2.2: an invalid or unacceptable token is invalid_request.
        raise InvalidRequest(
            f"the {role}_token is invalid", reason=f"{role}_{error.reason or error.error}"
        ) from None


def _check_may_act(
    subject: ValidatedToken, actor: ValidatedToken | None, client: Client, issuer: str
) -> None:
    may_act = subject.may_act
    if may_act is None:
        return
    if actor is not None:
        identity = {"sub": actor.subject, "iss": actor.issuer, "client_id": actor.client_id}
    else:
        identity = {"sub": client.client_id, "iss": issuer, "client_id": client.client_id}
    named = {k: v for k, v in may_act.items() if k in identity}
    if not named or any(identity[k] != v for k, v in named.items()):
        raise InvalidRequest(
            "the subject_token does not allow this party to act for it", reason="may_act"
        )


def _target(form: Form, subject: ValidatedToken) -> str:
    values = tuple(dict.fromkeys([*form.get("resource", ()), *form.get("audience", ())]))
    if len(values) > 1:
        raise InvalidTarget("only one resource or audience per token", reason="multiple_targets")
    if values:
        target = values[0]
        if not target or len(target) > _MAX_TARGET:
            raise InvalidTarget("the resource or audience is malformed", reason="malformed")
        if target not in subject.audience:
            raise InvalidTarget(
                "the target is outside the subject_token's audience", reason="broader_than_subject"
            )
        return target
    if len(subject.audience) != 1:
        raise InvalidTarget(
            "the subject_token has several audiences: name one", reason="ambiguous_target"
        )
    return subject.audience[0]


def _act_claim(
    subject: ValidatedToken, actor: ValidatedToken | None, issuer: str
) -> Mapping[str, Any] | None:
    if actor is None:
        return subject.act
    act: dict[str, Any] = {"sub": actor.subject}
    if actor.issuer != issuer:
        act["iss"] = actor.issuer
    if actor.client_id is not None:
        act["client_id"] = actor.client_id
    if subject.act is not None:
        depth, inner = 1, subject.act
        while isinstance(inner, Mapping) and "act" in inner:
            depth += 1
            inner = inner["act"]
        if depth >= _MAX_ACT_DEPTH:
            raise InvalidRequest("the delegation chain is too long", reason="act_too_deep")
        act["act"] = dict(subject.act)
    return act


def exchange_token(
    form: Form,
    client: Client,
    config: TokenExchangeConfig,
    *,
    presented: PresentedKeys,
    clock: Clock,
) -> TokenExchangeGrant:
    """Decide an RFC 8693 exchange for the authenticated ``client`` (see the module docs)."""
    if client.public:
        raise UnauthorizedClient(
            "token exchange is for confidential clients only", reason="public_client"
        )
    if GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient(
            "the client is not registered for token exchange", reason="grant_not_registered"
        )
    subject_token = _required(form, "subject_token")
    subject_type = _required(form, "subject_token_type")
    actor_token = _single(form, "actor_token")
    actor_type = _single(form, "actor_token_type")
    if (actor_token is None) != (actor_type is None):
        raise InvalidRequest(
            "actor_token and actor_token_type go together (RFC 8693 2.1)", reason="actor_pair"
        )
    requested_type = _single(form, "requested_token_type") or ACCESS_TOKEN_TYPE
    if requested_type != ACCESS_TOKEN_TYPE:
        raise InvalidRequest(
            "only access tokens are issued by token exchange",
            reason="unsupported_requested_token_type",
        )
    requested_scope = parse_scope(_single(form, "scope"))

    subject = _validate(config, subject_token, subject_type, "subject")
    actor = None
    if actor_token is not None and actor_type is not None:
        actor = _validate(config, actor_token, actor_type, "actor")
    _check_may_act(subject, actor, client, config.issuer)
    audience = _target(form, subject)
    scopes = narrow(subject.scopes, requested_scope or None, config.catalog)
    binding = bind_token([subject.cnf, actor.cnf if actor is not None else None], presented, client)
    act = _act_claim(subject, actor, config.issuer)

    if config.policy is not None:
        exchange = ExchangeRequest(subject, actor, audience, scopes, requested_type)
        granted = config.policy.authorize_exchange(client, exchange)
        if granted is None:
            raise InvalidRequest("the exchange is not allowed", reason="policy")
        allowed = GrantedScopes(scopes)
        if not all(allowed.holds_form(s) or allowed.covers(s, config.catalog) for s in granted):
            raise InvalidScope("the exchange policy granted more than allowed", reason="policy")
        scopes = tuple(dict.fromkeys(granted))

    max_lifetime = None
    if subject.expires_at is not None:
        max_lifetime = subject.expires_at - int(clock.now())
        if max_lifetime <= 0:
            raise InvalidRequest("the subject_token has expired", reason="subject_expired")
    extra: dict[str, Any] = {"act": dict(act)} if act is not None else {}
    claims = AccessTokenClaims(
        subject=subject.subject,
        client_id=client.client_id,
        audience=audience,
        scopes=scopes,
        cnf=binding.cnf,
        auth_time=subject.auth_time,
        acr=subject.acr,
        amr=subject.amr,
        principal_kind=subject.principal_kind,
        extra=extra,
    )
    return TokenExchangeGrant(
        claims=claims,
        binding=binding,
        issued_token_type=ACCESS_TOKEN_TYPE,
        max_lifetime=max_lifetime,
        subject=subject,
        actor=actor,
    )
