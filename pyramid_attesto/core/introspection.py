"""Token introspection responses: RFC 7662 §2.2, and the JWT response of RFC 9701.

- An active access token is described by the members of RFC 7662 §2.2: ``active``,
  ``scope``, ``client_id``, ``username`` (when the host supplies one), ``token_type``,
  ``exp``, ``iat``, ``nbf``, ``sub``, ``aud``, ``iss`` and ``jti``, plus ``cnf`` for a
  sender-constrained token (RFC 8705 §3.2, RFC 9449 §6.2). ``token_type`` is ``DPoP`` for a
  token bound to a DPoP key (``cnf.jkt``, RFC 9449 §6.2) and ``Bearer`` otherwise, including
  mTLS-bound tokens (RFC 8705 §3).
- Anything else (unknown, expired, revoked, malformed, or not the caller's to see) is
  ``{"active": false}`` and nothing more (RFC 7662 §2.2: no hint why).
- RFC 9701: the same response as the ``token_introspection`` claim of a JWT with ``typ``
  ``token-introspection+jwt`` (§5), signed with the keystore's active key, whose ``iss`` is
  the issuer, ``aud`` the calling resource server's client_id, and ``iat`` the time of the
  response. It carries no top-level ``sub`` or ``exp``, so it cannot pass for an access token
  or an ID token (§5, §8.1); and the ``typ`` is refused by both of their verifiers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Required, TypedDict

from .clock import Clock
from .jwt import encode_jwt
from .keys import Algorithm, Keystore
from .tokens import AccessToken

__all__ = [
    "INTROSPECTION_JWT_MEDIA_TYPE",
    "INTROSPECTION_TYP",
    "IntrospectionJWTEncoder",
    "IntrospectionResponse",
    "accepts_jwt_response",
    "active_response",
    "inactive_response",
    "introspect_access_token",
]

INTROSPECTION_TYP: Final = "token-introspection+jwt"
"""RFC 9701 §5: the ``typ`` of a JWT introspection response."""
INTROSPECTION_JWT_MEDIA_TYPE: Final = "application/token-introspection+jwt"
"""RFC 9701 §4 and §5: the ``Accept`` value that asks for it and its ``Content-Type``."""


class IntrospectionResponse(TypedDict, total=False):
    """RFC 7662 §2.2 (with ``cnf`` from RFC 8705 §3.2 and RFC 9449 §6.2)."""

    active: Required[bool]
    scope: str
    client_id: str
    username: str
    token_type: str
    exp: int
    iat: int
    nbf: int
    sub: str
    aud: str | list[str]
    iss: str
    jti: str
    cnf: dict[str, str]


def inactive_response() -> IntrospectionResponse:
    """``{"active": false}``: the whole answer for any token that is not active."""
    return {"active": False}


def active_response(
    *,
    client_id: str,
    scopes: Sequence[str] = (),
    subject: str | None = None,
    audience: Sequence[str] = (),
    issuer: str | None = None,
    expires_at: int | None = None,
    issued_at: int | None = None,
    not_before: int | None = None,
    jti: str | None = None,
    cnf: Mapping[str, Any] | None = None,
    token_type: str | None = None,
    username: str | None = None,
) -> IntrospectionResponse:
    """The RFC 7662 §2.2 response for an active token (a refresh token has no
    ``token_type``; use :func:`introspect_access_token` for a verified access token)."""
    response: IntrospectionResponse = {"active": True}
    if scopes:
        response["scope"] = " ".join(scopes)
    response["client_id"] = client_id
    if username is not None:
        response["username"] = username
    if token_type is not None:
        response["token_type"] = token_type
    if expires_at is not None:
        response["exp"] = expires_at
    if issued_at is not None:
        response["iat"] = issued_at
    if not_before is not None:
        response["nbf"] = not_before
    if subject is not None:
        response["sub"] = subject
    if audience:
        response["aud"] = audience[0] if len(audience) == 1 else list(audience)
    if issuer is not None:
        response["iss"] = issuer
    if jti is not None:
        response["jti"] = jti
    if cnf:
        response["cnf"] = {str(k): str(v) for k, v in cnf.items()}
    return response


def _token_type(cnf: Mapping[str, Any] | None) -> str:
    # RFC 9449 §6.2: a DPoP-bound token is of type DPoP; RFC 8705 keeps Bearer for mTLS.
    return "DPoP" if cnf and "jkt" in cnf else "Bearer"


def introspect_access_token(
    token: AccessToken, *, clock: Clock, username: str | None = None
) -> IntrospectionResponse:
    """The response for an access token the :class:`~.tokens.AccessTokenVerifier` accepted.

    It is checked once more against ``clock``: a token that expired (or is not yet valid)
    since it was verified is inactive. Revocation and "is the caller allowed to see it" are
    the caller's checks, before this one; their answer is :func:`inactive_response`.
    """
    now = clock.now()
    if token.expires_at <= now or (token.not_before is not None and token.not_before > now):
        return inactive_response()
    if token.cnf is not None and not all(isinstance(v, str) for v in token.cnf.values()):
        return inactive_response()
    return active_response(
        client_id=token.client_id,
        scopes=token.scopes,
        subject=token.subject,
        audience=token.audience,
        issuer=token.issuer,
        expires_at=token.expires_at,
        issued_at=token.issued_at,
        not_before=token.not_before,
        jti=token.jti,
        cnf=token.cnf,
        token_type=_token_type(token.cnf),
        username=username,
    )


class IntrospectionJWTEncoder:
    """Signs RFC 9701 JWT introspection responses for one issuer."""

    def __init__(self, keystore: Keystore, *, issuer: str, clock: Clock) -> None:
        self.keystore = keystore
        self.issuer = issuer
        self.clock = clock

    def encode(
        self, response: IntrospectionResponse, *, audience: str, alg: Algorithm | None = None
    ) -> str:
        """The signed JWT for ``response``, addressed to the calling resource server's
        client_id ``audience``; ``alg`` is its ``introspection_signed_response_alg``
        (``None``: the keystore default)."""
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": int(self.clock.now()),
            "token_introspection": dict(response),
        }
        return encode_jwt(self.keystore.signer(alg), INTROSPECTION_TYP, claims)


def accepts_jwt_response(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for the RFC 9701 JWT response (§4): it names
    ``application/token-introspection+jwt`` with a non-zero quality. ``*/*`` does not count:
    plain JSON stays the default."""
    if not accept:
        return False
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if media.lower() != INTROSPECTION_JWT_MEDIA_TYPE:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if quality > 0:
            return True
    return False
