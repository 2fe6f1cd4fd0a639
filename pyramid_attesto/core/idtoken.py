"""OpenID Connect ID tokens: OpenID Connect Core 1.0 §2, §3.1.3.6, §3.1.3.7, §3.3.2.11.

Minting: claims ``iss``, ``sub``, ``aud`` (the client_id), ``exp``, ``iat``, and when known
``auth_time``, ``nonce``, ``acr``, ``amr``, ``azp``, ``sid`` (OpenID Connect Front-/Back-Channel
Logout), ``at_hash`` (§3.1.3.6, §3.2.2.9) and ``c_hash`` (§3.3.2.11), plus the host's claims
about the user (§5.1). Signed with RS256 unless the client registered
``id_token_signed_response_alg`` (§15.1, OpenID Connect Dynamic Client Registration §2).

The header ``typ`` is ``JWT`` (RFC 7519 §5.1, what OpenID Providers conventionally send). Each
kind of JWT we mint has its own ``typ`` (DESIGN.md D6, RFC 8725 §3.11): the access-token verifier
refuses ``JWT`` and this verifier refuses ``at+jwt``, so one can never pass for the other.

``at_hash`` / ``c_hash``: base64url of the left-most half of the hash of the ASCII value, with
the hash of the signing algorithm: SHA-256 for ES256, RS256 and PS256; SHA-512 for EdDSA with
Ed25519 (the hash inside Ed25519, as OpenID Connect implementations agree).

Verification is for our own ID tokens (tests, ``id_token_hint`` at RP-initiated logout):
signature and form as in :mod:`pyramid_attesto.core.jwt`, then §3.1.3.7's checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from .clock import Clock
from .encoding import b64url_encode
from .jwt import Claims, JWTDecoder, encode_jwt
from .keys import ID_TOKEN_DEFAULT_ALGORITHM, SIGNING_ALGORITHMS, Algorithm, Keystore
from .secret import constant_time_equals
from .tokens import DEFAULT_LEEWAY, MintedToken

__all__ = [
    "DEFAULT_ID_TOKEN_LIFETIME",
    "ID_TOKEN_TYP",
    "IDToken",
    "IDTokenClaims",
    "IDTokenMinter",
    "IDTokenVerifier",
    "token_hash",
]

ID_TOKEN_TYP: Final = "JWT"  # noqa: S105  (a media type)
"""The header ``typ`` of our ID tokens (RFC 7519 §5.1); the access-token verifier refuses it."""
DEFAULT_ID_TOKEN_LIFETIME: Final = 600
"""Seconds an ID token is valid for unless configured otherwise."""

_REGISTERED: Final = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "acr", "amr"}
    | {"azp", "sid", "at_hash", "c_hash"}
)


def token_hash(value: str, alg: str) -> str:
    """``at_hash`` / ``c_hash`` of ``value`` for an ID token signed with ``alg``
    (OpenID Connect Core §3.1.3.6, §3.3.2.11)."""
    if alg == "EdDSA":
        digest = hashlib.sha512(value.encode("ascii")).digest()
    elif alg in ("ES256", "RS256", "PS256"):
        digest = hashlib.sha256(value.encode("ascii")).digest()
    else:
        raise ValueError(f"no token hash defined here for alg {alg!r}")
    return b64url_encode(digest[: len(digest) // 2])


@dataclass(frozen=True)
class IDTokenClaims:
    """What an ID token says; the minter adds ``iss``, ``aud``, times and the hashes.

    ``access_token`` and ``code`` are the values issued beside the ID token: only their hashes
    (``at_hash``, ``c_hash``) go into it. ``extra`` carries claims about the user
    (``email``, ``name``, ... OpenID Connect Core §5.1); it may not redefine the ones here.
    """

    subject: str
    client_id: str
    auth_time: int | None = None
    nonce: str | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    azp: str | None = None
    sid: str | None = None
    access_token: str | None = field(default=None, repr=False)
    code: str | None = field(default=None, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("subject", "client_id"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")
        if not isinstance(self.amr, tuple):
            raise ValueError("amr must be a tuple of strings")
        clash = _REGISTERED & set(self.extra)
        if clash:
            raise ValueError(f"extra claims may not redefine {sorted(clash)}")


class IDTokenMinter:
    """Mint ID tokens; ``alg`` per call is the client's ``id_token_signed_response_alg``."""

    def __init__(
        self,
        keystore: Keystore,
        *,
        issuer: str,
        clock: Clock,
        lifetime: int = DEFAULT_ID_TOKEN_LIFETIME,
    ) -> None:
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self._keystore = keystore
        self._issuer = issuer
        self._clock = clock
        self._lifetime = lifetime

    def mint(self, claims: IDTokenClaims, *, alg: Algorithm | None = None) -> MintedToken:
        """Sign ``claims`` with the active key for ``alg`` (default RS256, §15.1)."""
        signer = self._keystore.signer(alg or ID_TOKEN_DEFAULT_ALGORITHM)
        issued_at = int(self._clock.now())
        expires_at = issued_at + self._lifetime
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "sub": claims.subject,
            "aud": claims.client_id,
            "exp": expires_at,
            "iat": issued_at,
        }
        optional: dict[str, Any] = {
            "auth_time": claims.auth_time,
            "nonce": claims.nonce,
            "acr": claims.acr,
            "amr": list(claims.amr) or None,
            "azp": claims.azp,
            "sid": claims.sid,
            "at_hash": claims.access_token and token_hash(claims.access_token, signer.alg),
            "c_hash": claims.code and token_hash(claims.code, signer.alg),
        }
        payload.update((k, v) for k, v in optional.items() if v is not None)
        payload.update(claims.extra)
        token = encode_jwt(signer, ID_TOKEN_TYP, payload)
        # An ID token has no jti; MintedToken's jti is empty for it.
        return MintedToken(token, "", issued_at, expires_at)


@dataclass(frozen=True)
class IDToken:
    """A verified ID token. ``claims`` holds every claim, including the user claims."""

    issuer: str
    subject: str
    audience: tuple[str, ...]
    issued_at: int
    expires_at: int
    auth_time: int | None
    nonce: str | None
    acr: str | None
    amr: tuple[str, ...]
    azp: str | None
    sid: str | None
    kid: str
    alg: str
    claims: Mapping[str, Any] = field(repr=False)


class IDTokenVerifier:
    """Verify ID tokens this server issued (OpenID Connect Core §3.1.3.7)."""

    def __init__(
        self,
        keystore: Keystore,
        *,
        issuer: str,
        clock: Clock,
        leeway: int = DEFAULT_LEEWAY,
        algorithms: Collection[Algorithm] = SIGNING_ALGORITHMS,
    ) -> None:
        self._issuer = issuer
        self._clock = clock
        self._leeway = leeway
        self._decoder = JWTDecoder(keystore, typ=ID_TOKEN_TYP, algorithms=algorithms)

    def verify(
        self,
        token: str,
        *,
        client_id: str | None,
        nonce: str | None = None,
        access_token: str | None = None,
        code: str | None = None,
        allow_expired: bool = False,
    ) -> IDToken:
        """Check ``token`` and return it, or raise
        :class:`~pyramid_attesto.core.errors.InvalidToken` with a specific ``reason``.

        ``client_id`` must be in ``aud`` (and equal ``azp`` when present; ``None`` skips both,
        e.g. an ``id_token_hint`` whose client is not yet known). ``nonce``, ``access_token``
        and ``code``, when given, must match ``nonce``, ``at_hash`` and ``c_hash``.
        ``allow_expired`` accepts an expired token (an ``id_token_hint`` may be expired).
        """
        decoded = self._decoder.decode(token)
        fail = self._decoder.fail
        claims = Claims(decoded.claims, fail)
        issuer = claims.issuer(self._issuer)
        audience = claims.audience(None if client_id is None else (client_id,))
        iat, exp, _ = claims.times(self._clock.now(), self._leeway, check_expiry=not allow_expired)
        subject = claims.string("sub")
        azp = claims.optional_string("azp")
        if client_id is not None:
            if len(audience) > 1 and azp is None:
                fail("missing_claim", "an ID token for several audiences needs azp")
            if azp is not None and azp != client_id:
                fail("wrong_azp", "the ID token was issued to another client")
        token_nonce = claims.optional_string("nonce")
        if nonce is not None:
            if token_nonce is None:
                fail("missing_claim", "the ID token has no nonce claim")
            if not constant_time_equals(token_nonce, nonce):
                fail("wrong_nonce", "the ID token nonce does not match")
        for value, name in ((access_token, "at_hash"), (code, "c_hash")):
            if value is not None:
                expected = token_hash(value, decoded.alg)
                if not constant_time_equals(claims.string(name), expected):
                    fail(f"wrong_{name}", f"the ID token {name} does not match")
        auth_time = claims.optional_number("auth_time")
        return IDToken(
            issuer=issuer,
            subject=subject,
            audience=audience,
            issued_at=int(iat),
            expires_at=int(exp),
            auth_time=None if auth_time is None else int(auth_time),
            nonce=token_nonce,
            acr=claims.optional_string("acr"),
            amr=claims.strings("amr"),
            azp=azp,
            sid=claims.optional_string("sid"),
            kid=decoded.kid,
            alg=decoded.alg,
            claims=MappingProxyType(decoded.claims),
        )
