"""JWT access tokens: RFC 9068 (JSON Web Token Profile for OAuth 2.0 Access Tokens).

Minting (RFC 9068 §2): header ``{"alg", "typ": "at+jwt", "kid"}`` (§2.1); claims ``iss``,
``sub``, ``aud`` (one audience, DESIGN.md rule 8 and D11), ``exp``, ``iat``, ``nbf``, ``jti``
(128 random bits), ``client_id``, ``scope`` (§2.2, §2.2.3), plus ``cnf`` when the token is
sender-constrained (RFC 9449 §6, RFC 8705 §3), ``auth_time``, ``acr`` and ``amr`` (§2.2.1,
RFC 9470) and the principal kind (DESIGN.md D10). The ``sub`` of a client-credentials token
is the client (§2.2).

Verification (RFC 9068 §4): everything :class:`~pyramid_attesto.core.jwt.JWTDecoder` checks
(size, form, ``alg`` allow-list, ``typ`` = ``at+jwt`` or ``application/at+jwt``, ``crit``,
``kid`` lookup, signature, duplicate members), then the claims: ``iss`` exact; ``aud`` a string
or array naming this resource; ``exp`` and ``iat`` required NumericDates, ``nbf`` optional,
with a leeway (default 30 s) for clock skew; ``sub``, ``client_id`` and ``jti`` non-empty
strings; ``scope`` a string of NQCHAR scope tokens. Every failure is
:class:`~pyramid_attesto.core.errors.InvalidToken` with its own ``reason``.

Verification reads no database and re-imports no key (DESIGN.md rule 11).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from .clock import Clock
from .encoding import b64url_encode
from .jwt import MAX_TOKEN_BYTES, Claims, JWTDecoder, encode_jwt
from .keys import SIGNING_ALGORITHMS, Algorithm, Keystore
from .scopes import is_scope_token

__all__ = [
    "ACCESS_TOKEN_TYP",
    "DEFAULT_ACCESS_TOKEN_LIFETIME",
    "DEFAULT_LEEWAY",
    "PRINCIPAL_KIND_CLAIM",
    "AccessToken",
    "AccessTokenClaims",
    "AccessTokenMinter",
    "AccessTokenVerifier",
    "MintedToken",
    "new_jti",
]

ACCESS_TOKEN_TYP: Final = "at+jwt"  # noqa: S105  (a media type)
"""RFC 9068 §2.1 (``application/at+jwt`` is accepted on verification, §4)."""
DEFAULT_ACCESS_TOKEN_LIFETIME: Final = 900
"""Seconds an access token is valid for unless configured otherwise."""
DEFAULT_LEEWAY: Final = 30
"""Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""
PRINCIPAL_KIND_CLAIM: Final = "principal_kind"
"""The claim naming the kind of subject (``user``, ``client``, ...; DESIGN.md D10)."""

_REGISTERED: Final = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope"}
    | {"cnf", "auth_time", "acr", "amr", PRINCIPAL_KIND_CLAIM}
)


def new_jti() -> str:
    """A fresh JWT ID: 128 random bits, base64url (RFC 7519 §4.1.7, RFC 9068 §2.2)."""
    return b64url_encode(secrets.token_bytes(16))


@dataclass(frozen=True)
class AccessTokenClaims:
    """What an access token says; the minter adds ``iss``, times and ``jti``.

    ``audience`` is the one resource the token is for (RFC 8707; DESIGN.md rule 8). ``cnf`` is
    ``{"jkt": ...}`` for DPoP (RFC 9449 §6.1) or ``{"x5t#S256": ...}`` for mTLS
    (RFC 8705 §3.1). ``extra`` adds other claims (RFC 9068 §2.2.3.1 ``roles``, ``groups``, ...);
    it may not redefine the claims above.
    """

    subject: str
    client_id: str
    audience: str
    scopes: tuple[str, ...] = ()
    cnf: Mapping[str, str] | None = None
    auth_time: int | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    principal_kind: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("subject", "client_id", "audience"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")
        if not isinstance(self.scopes, tuple) or not all(is_scope_token(s) for s in self.scopes):
            raise ValueError("scopes must be a tuple of NQCHAR scope tokens (RFC 6749 §3.3)")
        if not isinstance(self.amr, tuple):
            raise ValueError("amr must be a tuple of strings")
        clash = _REGISTERED & set(self.extra)
        if clash:
            raise ValueError(f"extra claims may not redefine {sorted(clash)}")


@dataclass(frozen=True)
class MintedToken:
    """A freshly signed JWT and the facts the caller needs about it (the token is not in the
    ``repr``, so it does not end up in logs)."""

    token: str = field(repr=False)
    jti: str
    issued_at: int
    expires_at: int

    @property
    def expires_in(self) -> int:
        """Seconds of validity: the token response's ``expires_in`` (RFC 6749 §5.1)."""
        return self.expires_at - self.issued_at


class AccessTokenMinter:
    """Mint RFC 9068 access tokens signed by the keystore's active key for ``algorithm``
    (``None``: the keystore's default, ES256 when it has one)."""

    def __init__(
        self,
        keystore: Keystore,
        *,
        issuer: str,
        clock: Clock,
        lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
        algorithm: Algorithm | None = None,
    ) -> None:
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self._keystore = keystore
        self._issuer = issuer
        self._clock = clock
        self._lifetime = lifetime
        self._algorithm = algorithm

    def mint(self, claims: AccessTokenClaims, *, lifetime: int | None = None) -> MintedToken:
        """Sign ``claims`` valid from now for ``lifetime`` seconds (default: the minter's)."""
        issued_at = int(self._clock.now())
        expires_at = issued_at + (lifetime if lifetime is not None else self._lifetime)
        jti = new_jti()
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "sub": claims.subject,
            "aud": claims.audience,
            "exp": expires_at,
            "iat": issued_at,
            "nbf": issued_at,
            "jti": jti,
            "client_id": claims.client_id,
        }
        if claims.scopes:
            payload["scope"] = " ".join(claims.scopes)
        if claims.cnf is not None:
            payload["cnf"] = dict(claims.cnf)
        if claims.auth_time is not None:
            payload["auth_time"] = claims.auth_time
        if claims.acr is not None:
            payload["acr"] = claims.acr
        if claims.amr:
            payload["amr"] = list(claims.amr)
        if claims.principal_kind is not None:
            payload[PRINCIPAL_KIND_CLAIM] = claims.principal_kind
        payload.update(claims.extra)
        token = encode_jwt(self._keystore.signer(self._algorithm), ACCESS_TOKEN_TYP, payload)
        return MintedToken(token, jti, issued_at, expires_at)


@dataclass(frozen=True)
class AccessToken:
    """A verified access token. ``claims`` holds every claim, including unknown ones."""

    issuer: str
    subject: str
    client_id: str
    audience: tuple[str, ...]
    scopes: tuple[str, ...]
    issued_at: int
    expires_at: int
    not_before: int | None
    jti: str
    cnf: Mapping[str, Any] | None
    auth_time: int | None
    acr: str | None
    amr: tuple[str, ...]
    principal_kind: str | None
    kid: str
    alg: str
    claims: Mapping[str, Any] = field(repr=False)


def _int(value: int | float | None) -> int | None:
    return None if value is None else int(value)


class AccessTokenVerifier:
    """Verify RFC 9068 access tokens for one resource server (or several resource URIs).

    ``audience`` is this resource's canonical URI (or URIs): the token's ``aud`` must name one
    (RFC 9068 §4, RFC 8707). ``algorithms`` narrows the allow-list (e.g. FAPI's PS256/ES256).
    """

    def __init__(
        self,
        keystore: Keystore,
        *,
        issuer: str,
        audience: str | Collection[str],
        clock: Clock,
        leeway: int = DEFAULT_LEEWAY,
        algorithms: Collection[Algorithm] = SIGNING_ALGORITHMS,
        max_size: int = MAX_TOKEN_BYTES,
    ) -> None:
        self._issuer = issuer
        self._audiences = frozenset([audience] if isinstance(audience, str) else audience)
        if not self._audiences:
            raise ValueError("a verifier needs at least one audience")
        self._clock = clock
        self._leeway = leeway
        self._decoder = JWTDecoder(
            keystore, typ=ACCESS_TOKEN_TYP, algorithms=algorithms, max_size=max_size
        )

    def verify(self, token: str) -> AccessToken:
        """The verified token, or :class:`~pyramid_attesto.core.errors.InvalidToken`."""
        decoded = self._decoder.decode(token)
        claims = Claims(decoded.claims, self._decoder.fail)
        issuer = claims.issuer(self._issuer)
        audience = claims.audience(self._audiences)
        iat, exp, nbf = claims.times(self._clock.now(), self._leeway)
        subject = claims.string("sub")
        client_id = claims.string("client_id")
        jti = claims.string("jti")
        scopes = claims.scopes()
        cnf = claims.optional_object("cnf")
        auth_time = claims.optional_number("auth_time")
        acr = claims.optional_string("acr")
        amr = claims.strings("amr")
        principal_kind = claims.optional_string(PRINCIPAL_KIND_CLAIM)
        return AccessToken(
            issuer=issuer,
            subject=subject,
            client_id=client_id,
            audience=audience,
            scopes=scopes,
            issued_at=int(iat),
            expires_at=int(exp),
            not_before=_int(nbf),
            jti=jti,
            cnf=cnf,
            auth_time=_int(auth_time),
            acr=acr,
            amr=amr,
            principal_kind=principal_kind,
            kid=decoded.kid,
            alg=decoded.alg,
            claims=MappingProxyType(decoded.claims),
        )
