"""The hardened JWT profile shared by every kind of JWT this server mints and verifies.

Signing: the JWS Compact Serialization (RFC 7515 §3.1, §7.1) of a JSON claims set
(RFC 7519 §7.1), signed through a :class:`~pyramid_attesto.core.keys.Signer` so the key may
live in a KMS; the header carries ``alg``, ``typ`` and ``kid`` only.

Verification (:class:`JWTDecoder`), in order, cheapest and most hostile first
(RFC 7515 §5.2, RFC 7519 §7.2, RFC 8725):

1. size caps *before* any base64 decoding (DESIGN.md D6): ``too_large``;
2. exactly three segments of strict, canonical base64url, a UTF-8 JSON object header:
   ``malformed``; a member named twice in the header or the claims (RFC 7515 §5.2 item 3 and
   RFC 7519 §4 leave it to the parser; we refuse the ambiguity): ``duplicate_key``;
3. ``alg`` on the allow-list, which never holds ``none`` or an HMAC (RFC 8725 §3.1, §3.2):
   ``alg_not_allowed``;
4. ``typ`` is the one expected for this kind of JWT (RFC 8725 §3.11; RFC 7515 §4.1.9 compares
   media types case-insensitively and allows dropping ``application/``): ``wrong_typ``;
5. any ``crit`` header: none is understood (RFC 7515 §4.1.11): ``crit_unsupported``;
6. the key comes from our keystore by ``kid`` only: ``jku``, ``x5u``, ``x5c`` and ``jwk`` are
   never used (DESIGN.md D6, RFC 8725 §3.10): ``unknown_kid``; a ``kid`` published for another
   algorithm: ``alg_mismatch``;
7. the signature, checked by joserfc with the cached key object: ``bad_signature``;
8. the claims: a UTF-8 JSON object without ``NaN``/``Infinity``: ``malformed``.

Claim checks that every kind shares (``iss``, ``aud``, ``exp``/``nbf``/``iat`` with leeway,
typed members) are the :class:`Claims` helpers; each kind's module adds its own. Failures
raise the configured :class:`~pyramid_attesto.core.errors.OAuthError` class (``InvalidToken``
by default) with a specific ``reason``; descriptions never contain the token or any value
taken from it.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NoReturn

from joserfc import jws
from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jws import JWSRegistry

from .encoding import b64url_encode
from .errors import InvalidToken, OAuthError
from .keys import SIGNING_ALGORITHMS, Algorithm, KeyAlgorithmMismatch, Keystore, Signer

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_TOKEN_BYTES",
    "AllowListRegistry",
    "Claims",
    "DecodedJWT",
    "DuplicateMember",
    "JWTDecoder",
    "encode_jwt",
    "loads_json",
    "normalize_typ",
]

MAX_TOKEN_BYTES: Final = 8192
"""Default cap on a whole compact JWT, checked before anything is decoded."""
MAX_HEADER_BYTES: Final = 1024
"""Default cap on the base64url header segment."""

_JSON_SEPARATORS: Final = (",", ":")
_HEADER_CACHE_SIZE: Final = 64


def normalize_typ(typ: str) -> str:
    """``typ`` as compared: lower case, without ``application/`` (RFC 7515 §4.1.9)."""
    typ = typ.lower()
    return typ[12:] if typ.startswith("application/") else typ


def _dump(value: Mapping[str, Any]) -> bytes:
    return json.dumps(
        value, separators=_JSON_SEPARATORS, ensure_ascii=False, allow_nan=False
    ).encode()


# Encoded headers of the tokens this process signs: one per (alg, typ, kid), so a handful.
_SIGNED_HEADERS: dict[tuple[str, str, str], str] = {}


def _header_segment(alg: str, typ: str, kid: str) -> str:
    key = (alg, typ, kid)
    segment = _SIGNED_HEADERS.get(key)
    if segment is None:
        segment = b64url_encode(_dump({"alg": alg, "typ": typ, "kid": kid}))
        if len(_SIGNED_HEADERS) >= _HEADER_CACHE_SIZE:  # rotated keys: start over, bounded
            _SIGNED_HEADERS.clear()
        _SIGNED_HEADERS[key] = segment
    return segment


def encode_jwt(signer: Signer, typ: str, claims: Mapping[str, Any]) -> str:
    """Sign ``claims`` as a compact JWS with header ``{"alg", "typ", "kid"}`` (RFC 7515 §7.1)."""
    header = _header_segment(signer.alg, typ, signer.kid)
    signing_input = f"{header}.{b64url_encode(_dump(claims))}"
    signature = signer.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


_TO_STANDARD_ALPHABET: Final = bytes.maketrans(b"-_", b"+/")
# The last character of a canonical encoding leaves no bits unused (RFC 4648 §3.5): with 2 or
# 3 characters in the last quantum it must be one of these.
_CANONICAL_LAST: Final = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}


def _b64url(segment: str) -> bytes:
    """Strict unpadded base64url, as :func:`~pyramid_attesto.core.encoding.b64url_decode`
    but without its re-encoding check (this runs twice per verified token). ASCII input."""
    data = segment.encode("ascii")
    rest = len(data) % 4
    if rest == 1 or b"=" in data or b"+" in data or b"/" in data:
        raise ValueError("not unpadded base64url")
    if rest and data[-1] not in _CANONICAL_LAST[rest]:
        raise ValueError("non-canonical base64url")
    try:
        return binascii.a2b_base64(
            data.translate(_TO_STANDARD_ALPHABET) + b"=" * (-rest % 4), strict_mode=True
        )
    except binascii.Error as exc:
        raise ValueError("not unpadded base64url") from exc


class DuplicateMember(ValueError):
    """A JSON object names a member twice (RFC 7519 §4: such a JWT is rejected)."""


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise DuplicateMember("duplicate member")
    return result


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


_json_object_decoder = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant
)


def loads_json(data: bytes | str) -> Any:
    """Parse a JOSE segment or a JSON-valued protocol parameter strictly.

    UTF-8 only (RFC 7519 §7.2 item 4: ``json.loads(bytes)`` would also guess UTF-16/32); a
    member named twice raises :class:`DuplicateMember`; ``NaN`` and ``Infinity`` are not
    JSON; nesting too deep for the parser is a :class:`ValueError`, never a RecursionError
    that would escape as a server error. Every failure is a :class:`ValueError`.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return _json_object_decoder.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class AllowListRegistry(JWSRegistry):
    """A joserfc JWS registry that is itself an algorithm allow-list; build it once, reuse it.

    ``get_alg`` answers only the allowed algorithms: no lookup in joserfc's process-wide table
    and no per-call deprecation warning for ``EdDSA`` (RFC 9864 deprecates the name; we keep
    it for interoperability). Which names are accepted is the caller's policy. The size caps,
    when given, replace joserfc's defaults for the segments it checks.
    """

    def __init__(
        self,
        algorithms: Collection[str],
        *,
        max_header_length: int | None = None,
        max_payload_length: int | None = None,
    ) -> None:
        super().__init__(algorithms=list(algorithms), strict_check_header=False)
        if max_header_length is not None:
            self.max_header_length = max_header_length
        if max_payload_length is not None:
            self.max_payload_length = max_payload_length
        self._models: dict[str, JWSAlgModel] = {a: JWSRegistry.algorithms[a] for a in algorithms}

    def get_alg(self, name: str) -> JWSAlgModel:
        model = self._models.get(name)
        if model is None:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return model


@dataclass(frozen=True, slots=True)
class DecodedJWT:
    """A JWT whose signature verified; its claims are parsed but not yet validated."""

    header: Mapping[str, Any]
    claims: dict[str, Any]
    alg: str
    kid: str


class JWTDecoder:
    """Verify the signature of one kind of JWT (by ``typ``) with keys from a keystore.

    Build one per kind and configuration and reuse it: the joserfc registry is built here,
    and keys come imported from the keystore.
    """

    def __init__(
        self,
        keystore: Keystore,
        *,
        typ: str | Collection[str],
        algorithms: Collection[Algorithm] = SIGNING_ALGORITHMS,
        error: type[OAuthError] = InvalidToken,
        max_size: int = MAX_TOKEN_BYTES,
        max_header_size: int = MAX_HEADER_BYTES,
    ) -> None:
        unknown = set(algorithms) - set(SIGNING_ALGORITHMS)
        if unknown or not algorithms:
            raise ValueError(f"algorithms must be a non-empty subset of {SIGNING_ALGORITHMS}")
        self._keystore = keystore
        self._typs = frozenset(normalize_typ(t) for t in ([typ] if isinstance(typ, str) else typ))
        self._algorithms = frozenset(algorithms)
        self._error = error
        self._max_size = max_size
        self._max_header = max_header_size
        self._registry = AllowListRegistry(self._algorithms)
        # header segment -> (header, alg, kid) that passed _check_header; bounded.
        self._headers: dict[str, tuple[Mapping[str, Any], str, str]] = {}

    def fail(self, reason: str, description: str) -> NoReturn:
        """Raise the decoder's error class (``description`` must be RFC 6749 §5.2 text)."""
        raise self._error(description, reason=reason)

    def decode(self, token: str) -> DecodedJWT:
        """Check the token's form, header and signature; return its header and claims."""
        if not isinstance(token, str) or not token:
            self.fail("malformed", "the token is empty")
        if len(token) > self._max_size:
            self.fail("too_large", "the token is too large")
        if not token.isascii():
            self.fail("malformed", "the token is not ASCII")
        segments = token.split(".")
        if len(segments[0]) > self._max_header:
            self.fail("too_large", "the token header is too large")
        if len(segments) != 3:
            self.fail("malformed", "a JWS has exactly three segments")
        header_segment, payload_segment, signature_segment = segments
        cached = self._headers.get(header_segment)
        header, alg, kid = cached or self._check_header(header_segment)
        try:
            key = self._keystore.verification_key(kid, alg)
        except KeyAlgorithmMismatch:
            self.fail("alg_mismatch", "the token's algorithm does not match its key")
        if key is None:
            self.fail("unknown_kid", "the token's signing key is unknown")
        try:
            payload = _b64url(payload_segment)
        except ValueError:
            self.fail("malformed", "the token payload is not base64url")
        # joserfc checks the header members it knows, the key against the algorithm, and the
        # signature over the segments as received. The split and the base64url/JSON decoding
        # above are ours because they must be stricter than joserfc's (duplicate members,
        # canonical base64url, UTF-8); handing them over saves decoding everything twice.
        signed = jws.CompactSignature(dict(header), payload)
        signed.segments = {
            "header": header_segment.encode("ascii"),
            "payload": payload_segment.encode("ascii"),
            "signature": signature_segment.encode("ascii"),
        }
        try:
            valid = jws.validate_compact(signed, key, registry=self._registry)
        except (JoseError, ValueError, TypeError):
            self.fail("malformed", "the token header is invalid")
        if not valid:
            self.fail("bad_signature", "the token signature is invalid")
        if cached is None:  # only headers of tokens that verified: nobody else fills it
            if len(self._headers) >= _HEADER_CACHE_SIZE:
                self._headers.clear()
            self._headers[header_segment] = (header, alg, kid)
        try:
            claims = self._parse_object(payload)
        except DuplicateMember:
            self.fail("duplicate_key", "the token claims name a member twice")
        except ValueError:
            claims = None
        if claims is None:
            self.fail("malformed", "the token claims are not a JSON object")
        return DecodedJWT(header, claims, alg, kid)

    def _check_header(self, segment: str) -> tuple[Mapping[str, Any], str, str]:
        """The header checks that depend on nothing but the header. Tokens signed by one key
        share their header segment, so :meth:`decode` keeps the result of a header whose
        token verified (the key lookup and the signature are checked on every token)."""
        header = self._json_object(segment, "header")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            self.fail("alg_not_allowed", "the token's algorithm is not allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or normalize_typ(typ) not in self._typs:
            self.fail("wrong_typ", "the token is not of the expected type")
        if "crit" in header:
            self.fail("crit_unsupported", "the token has critical header parameters")
        if "b64" in header:  # RFC 7797 §6: only meaningful when listed in crit
            self.fail("malformed", "the token has an unencoded-payload header")
        kid = header.get("kid")
        if not isinstance(kid, str):
            self.fail("unknown_kid", "the token names no signing key")
        return MappingProxyType(header), alg, kid

    def _json_object(self, segment: str, what: str) -> dict[str, Any]:
        try:
            parsed = self._parse_object(_b64url(segment))
        except DuplicateMember:
            self.fail("duplicate_key", f"the token {what} names a member twice")
        except ValueError:  # deep nesting included: refused, never a crash
            parsed = None
        if parsed is None:
            self.fail("malformed", f"the token {what} is not a base64url JSON object")
        return parsed

    @staticmethod
    def _parse_object(data: bytes) -> dict[str, Any] | None:
        value = loads_json(data)
        return value if isinstance(value, dict) else None


_NQCHAR_SCOPE: Final = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*")


class Claims:
    """Typed reads of a verified claims set; every failure raises the decoder's error."""

    __slots__ = ("_claims", "_fail")

    def __init__(self, claims: Mapping[str, Any], fail: Callable[[str, str], NoReturn]) -> None:
        self._claims = claims
        self._fail = fail

    def string(self, name: str) -> str:
        """A required non-empty string (``missing_claim`` / ``bad_claim_type``)."""
        value = self._claims.get(name)
        if value is None:
            self._fail("missing_claim", f"the token has no {name} claim")
        if not isinstance(value, str) or not value:
            self._fail("bad_claim_type", f"the token's {name} claim is not a non-empty string")
        return value

    def optional_string(self, name: str) -> str | None:
        """A non-empty string if present."""
        return None if self._claims.get(name) is None else self.string(name)

    def number(self, name: str) -> int | float:
        """A required finite number, not a boolean (a NumericDate, RFC 7519 §2)."""
        value = self._claims.get(name)
        if value is None:
            self._fail("missing_claim", f"the token has no {name} claim")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            self._fail("bad_claim_type", f"the token's {name} claim is not a NumericDate")
        return value

    def optional_number(self, name: str) -> int | float | None:
        """A finite number if present."""
        return None if self._claims.get(name) is None else self.number(name)

    def strings(self, name: str) -> tuple[str, ...]:
        """An optional array of strings (``amr``); absent is ``()``."""
        value = self._claims.get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._fail("bad_claim_type", f"the token's {name} claim is not an array of strings")
        return tuple(value)

    def optional_object(self, name: str) -> Mapping[str, Any] | None:
        """A JSON object if present (``cnf``, RFC 7800 §3.1)."""
        value = self._claims.get(name)
        if value is not None and not isinstance(value, dict):
            self._fail("bad_claim_type", f"the token's {name} claim is not a JSON object")
        return value

    def scopes(self, name: str = "scope") -> tuple[str, ...]:
        """A space-separated list of NQCHAR scope tokens (RFC 6749 §3.3, RFC 9068 §2.2.3)."""
        value = self._claims.get(name)
        if value is None:
            return ()
        if not isinstance(value, str) or not _NQCHAR_SCOPE.fullmatch(value):
            self._fail("bad_claim_type", f"the token's {name} claim is not a scope string")
        return tuple(value.split(" "))

    def issuer(self, expected: str) -> str:
        """``iss``, compared with ``expected`` as an exact string (``wrong_issuer``)."""
        issuer = self.string("iss")
        if issuer != expected:
            self._fail("wrong_issuer", "the token was issued by another issuer")
        return issuer

    def audience(self, accepted: Collection[str] | None) -> tuple[str, ...]:
        """``aud`` as a string or an array of strings (RFC 7519 §4.1.3) that must name one of
        ``accepted`` (all audiences are accepted when it is ``None``)."""
        value = self._claims.get("aud")
        if value.__class__ is str and value:  # the usual case, and the one we mint
            if accepted is not None and value not in accepted:
                self._fail("wrong_audience", "the token is not intended for this audience")
            return (value,)
        if value is None:
            self._fail("missing_claim", "the token has no aud claim")
        audiences = (value,) if isinstance(value, str) else value
        if (
            not isinstance(audiences, (tuple, list))
            or not audiences
            or not all(isinstance(a, str) and a for a in audiences)
        ):
            self._fail("bad_claim_type", "the token's aud claim is not a string or strings")
        if accepted is not None and not any(a in accepted for a in audiences):
            self._fail("wrong_audience", "the token is not intended for this audience")
        return tuple(audiences)

    def times(
        self, now: float, leeway: int, *, check_expiry: bool = True
    ) -> tuple[int | float, int | float, int | float | None]:
        """``(iat, exp, nbf)``: ``exp`` and ``iat`` required, ``nbf`` optional (RFC 7519 §4.1.4,
        §4.1.5, §4.1.6), each compared with ``now`` allowing ``leeway`` seconds of skew."""
        exp = self.number("exp")
        iat = self.number("iat")
        nbf = self.optional_number("nbf")
        if check_expiry and now - leeway >= exp:
            self._fail("expired", "the token has expired")
        if nbf is not None and now + leeway < nbf:
            self._fail("not_yet_valid", "the token is not valid yet")
        if iat > now + leeway:
            self._fail("issued_in_future", "the token was issued in the future")
        return iat, exp, nbf
