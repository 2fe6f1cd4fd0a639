"""Request objects: JWT-secured authorization requests (RFC 9101).

A ``request`` parameter carries the authorization request as a JWS signed by the client
(RFC 9101 §4, §6.2). :class:`RequestObjectVerifier` checks it against the client's registered
keys under a :class:`RequestObjectPolicy`:

- compact JWS only: an encrypted (JWE) or unsecured (``alg`` ``none``) object is refused,
  and so is any ``alg`` outside the policy's asymmetric allow-list; the size is capped before
  anything is decoded (DESIGN.md D6);
- keys come only from the client's JWK Set (the :class:`~.clients.JWKSProvider`, refetched
  once for an unknown ``kid``); ``jku``, ``x5u``, ``x5c`` and ``jwk`` headers are ignored and
  ``crit`` is refused (D6);
- ``typ``, when present, is ``oauth-authz-req+jwt`` (RFC 9101 §10.8, compared as RFC 7515
  §4.1.9 says: case-insensitively, ``application/`` optional) or ``JWT``; any other type is
  a different kind of JWT and refused (RFC 8725 §3.11). The policy can require the explicit
  type;
- ``iss``, when present, is the client's ``client_id``; ``aud``, when present, is (or
  contains) the issuer (RFC 9101 §4); ``exp``, ``nbf`` and ``iat`` are honoured with a small
  leeway; duplicate member names are refused (RFC 7519 §4).

The FAPI 2.0 Message Signing policy (:meth:`RequestObjectPolicy.fapi2_message_signing`,
§5.3.1 with the FAPI 2.0 Security Profile §5.4.1 algorithms) also requires ``aud``, ``iss``,
``exp`` and ``nbf``, an ``nbf`` no more than 60 minutes in the past, a lifetime
(``exp - nbf``) of at most 60 minutes, and the ``client_id``, ``response_type`` and
``redirect_uri`` members, and allows only PS256, ES256 and EdDSA.

Every failure is :class:`~.errors.InvalidRequestObject` (RFC 9101 §6.2, §7) with a
``reason``; the parameters are then read by
:func:`~.authorization.request_object_parameters` (only those inside are used, DESIGN.md D8).
A ``request_uri`` that is a URL is never fetched: see
:func:`~.authorization.parse_pushed_reference`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jws import CompactSignature, JWSRegistry

from .client_auth import KeySetCache
from .clients import Client, JWKSProvider, inline_jwks
from .clock import Clock
from .encoding import is_b64url
from .errors import ConfigurationError, InvalidRequestObject
from .jwt import AllowListRegistry, loads_json

__all__ = [
    "DEFAULT_REQUEST_OBJECT_ALGORITHMS",
    "FAPI_REQUEST_OBJECT_ALGORITHMS",
    "REQUEST_OBJECT_TYP",
    "SUPPORTED_REQUEST_OBJECT_ALGORITHMS",
    "RequestObjectPolicy",
    "RequestObjectVerifier",
]

REQUEST_OBJECT_TYP: Final = "oauth-authz-req+jwt"
"""RFC 9101 §10.8 and §10.6: the explicit type of a request object."""

SUPPORTED_REQUEST_OBJECT_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Asymmetric algorithms a policy may allow (the client signs with a key it registered)."""
DEFAULT_REQUEST_OBJECT_ALGORITHMS: frozenset[str] = frozenset({"ES256", "PS256", "RS256", "EdDSA"})
FAPI_REQUEST_OBJECT_ALGORITHMS: frozenset[str] = frozenset({"PS256", "ES256", "EdDSA"})
"""FAPI 2.0 Security Profile §5.4.1."""

_MIN_RSA_BITS = 2048
_MAX_KEYS_TRIED = 8
_COMPACT_JWS = re.compile(r"\A[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\Z")
_FAPI_MAX_WINDOW = 3600


# One-algorithm registries: the policy's allow-list decides which of them may be used.
_SIZES: Final = {"max_header_length": 4096, "max_payload_length": 65536}
_PARSE_REGISTRY = AllowListRegistry((), **_SIZES)
_REGISTRIES: Mapping[str, JWSRegistry] = {
    alg: AllowListRegistry((alg,), **_SIZES) for alg in SUPPORTED_REQUEST_OBJECT_ALGORITHMS
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestObjectPolicy:
    """What a request object must look like. The default is the generic RFC 9101 policy.

    ``max_nbf_age`` bounds how far in the past ``nbf`` may be; ``max_lifetime`` bounds
    ``exp - nbf`` (or ``exp - iat`` without ``nbf``, or ``exp - now`` without either);
    ``required_claims`` must be present. ``leeway`` is the clock skew allowed on ``exp``,
    ``nbf`` and ``iat``.
    """

    algorithms: frozenset[str] = DEFAULT_REQUEST_OBJECT_ALGORITHMS
    require_explicit_typ: bool = False
    require_aud: bool = False
    require_iss: bool = False
    require_exp: bool = False
    require_nbf: bool = False
    max_nbf_age: int | None = None
    max_lifetime: int | None = None
    required_claims: frozenset[str] = frozenset()
    leeway: int = 10
    max_bytes: int = 65536

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithms", frozenset(self.algorithms))
        object.__setattr__(self, "required_claims", frozenset(self.required_claims))
        if not self.algorithms:
            raise ConfigurationError("a request object policy needs at least one algorithm")
        bad = self.algorithms - SUPPORTED_REQUEST_OBJECT_ALGORITHMS
        if bad:
            raise ConfigurationError(
                f"request object algorithms must be asymmetric and supported: {sorted(bad)}"
            )
        if self.leeway < 0 or self.max_bytes < 512:
            raise ConfigurationError("request object limits must be positive")
        for limit in (self.max_nbf_age, self.max_lifetime):
            if limit is not None and limit <= 0:
                raise ConfigurationError("request object limits must be positive")

    @classmethod
    def generic(cls, **overrides: Any) -> RequestObjectPolicy:
        """RFC 9101 as written: the optional claims are checked when present."""
        return cls(**overrides)

    @classmethod
    def fapi2_message_signing(cls, **overrides: Any) -> RequestObjectPolicy:
        """FAPI 2.0 Message Signing §5.3.1: ``aud``, ``iss``, ``exp`` and ``nbf`` required,
        ``nbf`` at most 60 minutes old, lifetime at most 60 minutes, PS256/ES256/EdDSA."""
        settings: dict[str, Any] = {
            "algorithms": FAPI_REQUEST_OBJECT_ALGORITHMS,
            "require_aud": True,
            "require_iss": True,
            "require_exp": True,
            "require_nbf": True,
            "max_nbf_age": _FAPI_MAX_WINDOW,
            "max_lifetime": _FAPI_MAX_WINDOW,
            "required_claims": frozenset({"client_id", "response_type", "redirect_uri"}),
        }
        settings.update(overrides)
        return cls(**settings)

    @property
    def request_object_signing_alg_values_supported(self) -> list[str]:
        """For the metadata: exactly the allowed algorithms."""
        return sorted(self.algorithms)


def _fail(description: str, reason: str) -> InvalidRequestObject:
    return InvalidRequestObject(description, reason=reason)


def _typ_problem(typ: object, explicit: bool) -> bool:
    if typ is None:
        return explicit
    if not isinstance(typ, str):
        return True
    value = typ.lower().removeprefix("application/")
    if value == REQUEST_OBJECT_TYP:
        return False
    return explicit or value != "jwt"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return float(value)


class RequestObjectVerifier:
    """Verifies request objects for one issuer under one policy."""

    def __init__(
        self,
        policy: RequestObjectPolicy,
        *,
        issuer: str,
        clock: Clock,
        jwks: JWKSProvider = inline_jwks,
        key_cache: KeySetCache | None = None,
    ) -> None:
        self.policy = policy
        self.issuer = issuer
        self.clock = clock
        self.jwks = jwks
        self.key_cache = key_cache if key_cache is not None else KeySetCache()

    def verify(self, value: str, client: Client) -> dict[str, Any]:
        """The claims of the request object ``value`` sent by ``client``; raises
        :class:`~.errors.InvalidRequestObject`."""
        obj, alg, claims = self._parse(value)
        registered = client.request_object_signing_alg
        if registered is not None and alg != registered:
            # OIDC Registration §2: a registered alg is the only one the client may use.
            raise _fail("the request object algorithm is not allowed", "alg_not_registered")
        self._verify_signature(obj, alg, client)
        self._check_claims(claims, client)
        return claims

    def _parse(self, value: str) -> tuple[CompactSignature, str, dict[str, Any]]:
        if len(value) > self.policy.max_bytes:
            raise _fail("the request object is too large", "too_large")
        if value.count(".") == 4:
            raise _fail("encrypted request objects are not supported", "encrypted")
        if not _COMPACT_JWS.match(value) or not all(is_b64url(p) for p in value.split(".")):
            raise _fail("the request object is not a compact JWS", "malformed")
        try:
            obj = jws.extract_compact(value.encode("ascii"), registry=_PARSE_REGISTRY)
            claims = loads_json(obj.payload)
        except (JoseError, ValueError, TypeError, RecursionError):  # deep nesting: not a crash
            raise _fail("the request object is not a valid JWT", "malformed") from None
        if not isinstance(claims, dict):
            raise _fail("the request object is not a valid JWT", "malformed")
        header = obj.headers()
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.policy.algorithms:
            # RFC 9101 §6.2 with RFC 8725 §3.1: alg none and anything off the list.
            raise _fail("the request object algorithm is not allowed", "alg_not_allowed")
        if "crit" in header or "b64" in header:
            raise _fail("the request object uses an unsupported header", "crit")
        if _typ_problem(header.get("typ"), self.policy.require_explicit_typ):
            # RFC 8725 §3.11: a JWT typed for another purpose is not a request object.
            raise _fail("the request object has the wrong typ", "wrong_typ")
        return obj, alg, claims

    def _verify_signature(self, obj: CompactSignature, alg: str, client: Client) -> None:
        kid = obj.headers().get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _fail("the request object kid is malformed", "malformed")
        registry = _REGISTRIES[alg]
        for refresh in (False, True):
            jwks = self.jwks(client, refresh=refresh)
            if jwks is None:
                raise _fail("the client has no registered keys", "no_client_keys")
            try:
                keys = self.key_cache.get(jwks)
            except (JoseError, ValueError, TypeError, KeyError):
                raise _fail("the client's keys are invalid", "bad_client_jwks") from None
            candidates = _candidate_keys(keys, alg, kid)
            for key in candidates[:_MAX_KEYS_TRIED]:
                try:
                    if jws.validate_compact(obj, key, registry=registry):
                        return
                except (JoseError, ValueError, TypeError):
                    continue
            # Refetch once only for an unknown kid: the client may have rotated its keys.
            if candidates or kid is None or client.jwks_uri is None:
                break
        raise _fail("the request object signature is invalid", "bad_signature")

    def _check_claims(self, claims: Mapping[str, Any], client: Client) -> None:
        policy = self.policy
        missing = [name for name in sorted(policy.required_claims) if name not in claims]
        if missing:
            raise _fail("the request object lacks a required member", "missing_claim")

        iss = claims.get("iss")
        if iss is None and policy.require_iss:
            raise _fail("the request object needs iss", "missing_iss")
        if iss is not None and iss != client.client_id:
            # RFC 9101 §4: iss is the client_id of the client that signed it.
            raise _fail("the request object iss is not the client", "wrong_iss")

        aud = claims.get("aud")
        if aud is None:
            if policy.require_aud:
                raise _fail("the request object needs aud", "missing_aud")
        elif not (aud == self.issuer or (isinstance(aud, list) and self.issuer in aud)):
            # RFC 9101 §4 and FAPI 2.0 Message Signing §5.3.1: aud is the issuer.
            raise _fail("the request object aud is not this server", "wrong_aud")

        now = self.clock.now()
        leeway = policy.leeway
        exp = self._time(claims, "exp", policy.require_exp)
        nbf = self._time(claims, "nbf", policy.require_nbf)
        iat = self._time(claims, "iat", False)
        if exp is not None and now >= exp + leeway:
            raise _fail("the request object has expired", "expired")
        if nbf is not None:
            if nbf > now + leeway:
                raise _fail("the request object is not yet valid", "not_yet_valid")
            if policy.max_nbf_age is not None and nbf < now - policy.max_nbf_age:
                raise _fail("the request object nbf is too old", "nbf_too_old")
        if iat is not None and iat > now + leeway:
            raise _fail("the request object was issued in the future", "iat_in_future")
        if exp is not None and policy.max_lifetime is not None:
            start = nbf if nbf is not None else iat if iat is not None else now
            if exp - start > policy.max_lifetime:
                raise _fail("the request object lifetime is too long", "lifetime_too_long")

    @staticmethod
    def _time(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
        if name not in claims:
            if required:
                raise _fail(f"the request object needs {name}", f"missing_{name}")
            return None
        value = _number(claims[name])
        if value is None:
            raise _fail(f"the request object {name} is malformed", f"malformed_{name}")
        return value


def _candidate_keys(keys: KeySet, alg: str, kid: str | None) -> list[Any]:
    key_type = _REGISTRIES[alg].algorithms[alg].key_type
    found = []
    for key in keys:
        if key.key_type != key_type or key.get("use") not in (None, "sig"):
            continue
        if key.get("alg") not in (None, alg) or (kid is not None and key.kid != kid):
            continue
        if isinstance(key, RSAKey) and key.raw_value.key_size < _MIN_RSA_BITS:
            continue
        found.append(key)
    return found
