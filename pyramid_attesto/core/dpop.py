"""DPoP: Demonstrating Proof of Possession (RFC 9449).

What is here:

- :func:`verify_proof` / :class:`DPoPVerifier` — every check of RFC 9449 §4.3, in this order,
  each failure an :class:`~pyramid_attesto.core.errors.InvalidDPoPProof` with its ``reason``:

  ==================  =============================================================
  ``too_large``       the proof is longer than :attr:`DPoPPolicy.max_size` (checked
                      before any base64 decoding, DESIGN.md D6)
  ``malformed``       not a compact JWS of exactly three base64url segments whose
                      header and payload are JSON objects (§4.3 item 2)
  ``typ``             ``typ`` is not ``dpop+jwt`` (§4.2, §4.3 item 4)
  ``alg``             ``alg`` is not in the asymmetric allow-list: never ``none``,
                      never a MAC (§4.3 item 5)
  ``crit``            a ``crit`` header: no extension is understood here (RFC 7515
                      §4.1.11)
  ``missing_jwk``     no ``jwk`` header object (§4.2)
  ``private_key``     the ``jwk`` holds private members ``d p q dp dq qi oth k``
                      (§4.3 item 7)
  ``invalid_jwk``     an unsupported ``kty``, a malformed member, a point not on the
                      curve, a ``use`` other than ``sig`` or ``key_ops`` without
                      ``verify``
  ``jwk_alg``         the ``jwk`` names an ``alg`` other than the header's
  ``weak_key``        an RSA modulus below :attr:`DPoPPolicy.min_rsa_bits`
  ``key_alg``         the key's type or curve does not fit ``alg``
  ``bad_signature``   the signature does not verify with the ``jwk`` (§4.3 item 6)
  ``missing_<c>``     a required claim ``jti``/``htm``/``htu``/``iat`` is absent
  ``invalid_<c>``     a claim has the wrong JSON type (or a non-finite ``iat``)
  ``htm_mismatch``    ``htm`` differs from the request method, case-sensitively
                      (§4.3 item 8)
  ``invalid_htu``     ``htu`` is not an absolute http(s) URL without userinfo
  ``htu_mismatch``    ``htu`` differs after :func:`~pyramid_attesto.core.urls.normalize_htu`
                      (§4.3 item 9, DESIGN.md rule 1)
  ``iat_too_old``     ``iat`` is more than :attr:`DPoPPolicy.max_age` seconds ago
  ``iat_in_future``   ``iat`` is more than :attr:`DPoPPolicy.max_future` seconds ahead
                      (§4.3 item 11, §11.1)
  ``jti_too_long``    ``jti`` is empty or longer than 256 bytes (§4.2, §11.1)
  ``missing_ath``     an access token is presented and the proof has no ``ath`` (§7.1)
  ``ath_mismatch``    ``ath`` is not the hash of that access token (§4.3 item 12)
  ``jkt_mismatch``    the key is not the one the token or grant is bound to (§4.3 item
                      12, §6.1, §10.1)
  ==================  =============================================================

  Last comes the nonce (§8, §9): when a :class:`NonceSource` is passed, a proof without a
  nonce, or with one the source does not accept, raises
  :class:`~pyramid_attesto.core.errors.UseDPoPNonce` carrying a fresh nonce (reasons
  ``missing_nonce`` and ``invalid_nonce``) — only for a proof that passed everything else.

  An ``ath`` on a proof sent *without* an access token (at the token endpoint) must be a
  string and is otherwise not checked: RFC 9449 §4.2 defines ``ath`` for requests that carry
  an access token and §4.2 lets a proof carry other claims, so refusing it would refuse
  conforming clients.

- Replay (§11.1) is *not* claimed by verification. DESIGN.md rule 7: the caller claims
  :attr:`DPoPProof.replay_key` with :func:`claim_replay` only after the access token or the
  grant verified, so anonymous callers cannot grow the replay store.
- :class:`DPoPKeyCache`: bounded LRUs from the key's public members to the imported key and
  its RFC 7638 thumbprint, and from a header segment to the outcome of its checks, so a
  returning client's proof costs no key import and no header parse (DESIGN.md rule 11).
- Server nonces: :class:`HMACNonces` (stateless, time-windowed, a shared and rotatable secret
  list, valid on every node) and :class:`StoreNonces` (over
  :class:`~pyramid_attesto.core.stores.DPoPNonceStore`).
- :func:`build_proof` (the client side, for tests and ``pytest_attesto``), :func:`compute_ath`
  and :func:`single_dpop_header` (§4.3 item 1: exactly one ``DPoP`` header).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import struct
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, NamedTuple, NoReturn, Protocol, TypeVar, runtime_checkable

from joserfc import jws
from joserfc.errors import JoseError, MissingAlgorithmError, SecurityWarning
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from joserfc.util import json_b64decode, urlsafe_b64decode

from .clock import Clock, SystemClock
from .encoding import b64url_decode, b64url_encode
from .errors import ConfigurationError, InvalidDPoPProof, UseDPoPNonce
from .jwt import loads_json
from .secret import constant_time_equals, sha256_b64url
from .stores import DPoPNonceStore, ReplayStore
from .urls import InvalidURL, normalize_htu

__all__ = [
    "DEFAULT_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "DPoPKeyCache",
    "DPoPPolicy",
    "DPoPProof",
    "DPoPVerifier",
    "HMACNonces",
    "NonceSource",
    "StoreNonces",
    "allowed_algorithms",
    "build_proof",
    "claim_replay",
    "compute_ath",
    "single_dpop_header",
    "verify_proof",
]

DPOP_TYP: Final = "dpop+jwt"
MAX_JTI_BYTES: Final = 256

# alg -> (kty, the curves it accepts; None for RSA). Asymmetric JWS algorithms only.
_ALG_KEYS: Final[dict[str, tuple[str, frozenset[str] | None]]] = {
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "ES256K": ("EC", frozenset({"secp256k1"})),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    "Ed25519": ("OKP", frozenset({"Ed25519"})),
    "Ed448": ("OKP", frozenset({"Ed448"})),
}

SUPPORTED_ALGORITHMS: Final = frozenset(_ALG_KEYS)
"""Every algorithm a :class:`DPoPPolicy` may allow: the asymmetric JWS algorithms."""

DEFAULT_ALGORITHMS: Final = ("ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA")
"""The default allow-list, advertised as ``dpop_signing_alg_values_supported``."""

_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7518 §6.2.1.2 / RFC 8037 §2: coordinates have the full size of the curve.
_COORDINATE_BYTES: Final = {
    "P-256": 32,
    "P-384": 48,
    "P-521": 66,
    "secp256k1": 32,
    "Ed25519": 32,
    "Ed448": 57,
}
# The members RFC 7638 §3.2 hashes, in its (lexicographic) order.
_PUBLIC_MEMBERS: Final = {"EC": ("crv", "x", "y"), "RSA": ("e", "n"), "OKP": ("crv", "x")}
_REQUIRED_CLAIMS: Final = (("jti", str), ("htm", str), ("htu", str))
_K = TypeVar("_K")
_V = TypeVar("_V")


def _fail(reason: str, description: str) -> NoReturn:
    raise InvalidDPoPProof(description, reason=reason)


def compute_ath(access_token: str) -> str:
    """``ath``: base64url(SHA-256(ASCII(access token))) (RFC 9449 §4.2).

    >>> compute_ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")
    'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo'
    """
    # UTF-8 is ASCII for every valid token, and never raises on an invalid one.
    return sha256_b64url(access_token)


# -- policy --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DPoPPolicy:
    """What a DPoP proof may look like. Invalid values raise
    :class:`~pyramid_attesto.core.errors.ConfigurationError` at construction.

    ``max_age`` and ``max_future`` bound ``iat`` (RFC 9449 §11.1): a proof is accepted from
    ``max_future`` seconds before its ``iat`` until ``max_age`` seconds after it.
    """

    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    max_age: int = 60
    max_future: int = 60
    max_size: int = 8192
    min_rsa_bits: int = 2048
    _registry: jws.JWSRegistry = field(init=False, repr=False, compare=False)
    _models: dict[str, JWSAlgModel] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        algorithms = tuple(self.algorithms)
        if not algorithms:
            raise ConfigurationError("DPoP needs at least one signing algorithm")
        unsupported = sorted(set(algorithms) - SUPPORTED_ALGORITHMS)
        if unsupported:
            raise ConfigurationError(
                f"DPoP algorithms must be asymmetric JWS algorithms, not {unsupported}"
            )
        for name in ("max_age", "max_size"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"DPoP {name} must be positive")
        if self.max_future < 0:
            raise ConfigurationError("DPoP max_future must not be negative")
        if self.min_rsa_bits < 2048:
            raise ConfigurationError("DPoP min_rsa_bits must be at least 2048")
        object.__setattr__(self, "algorithms", algorithms)
        # One registry per policy: sizes are capped by max_size, not by joserfc's 512-byte
        # header default that an RSA jwk exceeds; unknown header names are allowed (§4.2).
        registry = jws.JWSRegistry(algorithms=algorithms, strict_check_header=False)
        registry.max_header_length = self.max_size
        registry.max_payload_length = self.max_size
        registry.max_signature_length = self.max_size
        object.__setattr__(self, "_registry", registry)
        with warnings.catch_warnings():
            # joserfc flags "EdDSA" as superseded by RFC 9864; allowing it is this policy's call.
            warnings.simplefilter("ignore", SecurityWarning)
            object.__setattr__(self, "_models", {a: registry.get_alg(a) for a in algorithms})

    @property
    def replay_ttl(self) -> int:
        """The longest a replay record must live, counted from when its proof is verified
        (an ``iat`` up to ``max_future`` ahead, then ``max_age``): for sizing replay stores."""
        return self.max_age + self.max_future + 1


DEFAULT_POLICY: Final = DPoPPolicy()


# -- key cache -----------------------------------------------------------------------------


class _KeyEntry(NamedTuple):
    key: Key
    jkt: str
    kty: str
    crv: str | None


class _HeaderEntry(NamedTuple):
    policy: DPoPPolicy
    alg: str
    model: JWSAlgModel
    key: _KeyEntry


class _LRU(Generic[_K, _V]):
    """A bounded, thread-safe least-recently-used map."""

    __slots__ = ("_entries", "_lock", "hits", "maxsize", "misses")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: _K) -> _V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self._entries.move_to_end(key)
            return value

    def put(self, key: _K, value: _V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class DPoPKeyCache:
    """Bounded, thread-safe LRU caches of what a returning client's proof would recompute.

    - :attr:`keys`: a jwk's public members ``(kty, crv, x, y)``, ``(kty, e, n)`` or
      ``(kty, crv, x)`` -> the imported joserfc key and its RFC 7638 thumbprint (``jkt``).
      The members are checked to be canonical base64url of the full size before an import,
      so one key has one entry and one thumbprint.
    - :attr:`headers`: a proof's protected-header segment, byte for byte -> the outcome of
      the header checks (``typ``, ``alg``, ``crit``, ``jwk``) under one policy. A client
      library sends the same header with every proof, so its JSON is parsed once.

    Each holds at most ``maxsize`` entries; when full the least recently used one goes (a
    cache: losing an entry costs only a re-import). Memory is about 2 KB per entry for EC
    keys and 4 KB for RSA keys.
    """

    __slots__ = ("headers", "keys", "maxsize")

    def __init__(self, maxsize: int = 4096) -> None:
        if maxsize < 1:
            raise ConfigurationError("the DPoP key cache needs room for at least one key")
        self.maxsize = maxsize
        self.keys: _LRU[tuple[str, ...], _KeyEntry] = _LRU(maxsize)
        self.headers: _LRU[str, _HeaderEntry] = _LRU(maxsize)

    def clear(self) -> None:
        self.keys.clear()
        self.headers.clear()


def _identify(jwk: dict[str, Any]) -> tuple[str, ...]:
    """The cache key: the members that define the public key, as sent (checked on import)."""
    kty = jwk.get("kty")
    if not isinstance(kty, str) or kty not in _PUBLIC_MEMBERS:
        _fail("invalid_jwk", "the DPoP proof jwk has an unsupported key type")
    names = _PUBLIC_MEMBERS[kty]
    ident: list[str] = [kty]
    for name in names:
        value = jwk.get(name)
        if not isinstance(value, str):
            _fail("invalid_jwk", "the DPoP proof jwk lacks a required member")
        ident.append(value)
    return tuple(ident)


def _check_members(ident: tuple[str, ...], min_rsa_bits: int) -> None:
    """Canonical base64url of the full size, so that one key has exactly one cache entry and
    one thumbprint (RFC 7518 §6.2.1.2, §6.3.1.1; RFC 8037 §2); RSA moduli long enough."""
    kty = ident[0]
    size: int | None = None
    if kty != "RSA":
        size = _COORDINATE_BYTES.get(ident[1])
        if size is None or (kty == "OKP") != ident[1].startswith("Ed"):
            _fail("invalid_jwk", "the DPoP proof jwk has an unsupported curve")
    raw: list[bytes] = []
    for value in ident[1 + (size is not None) :]:
        try:
            member = b64url_decode(value)
        except ValueError:
            _fail("invalid_jwk", "a DPoP proof jwk member is not base64url")
        if not member or (len(member) != size if size is not None else member[0] == 0):
            _fail("invalid_jwk", "a DPoP proof jwk member has the wrong size")
        raw.append(member)
    if kty == "RSA" and int.from_bytes(raw[1], "big").bit_length() < min_rsa_bits:
        _fail("weak_key", "the DPoP proof RSA key is too short")


def _rsa_bits(key: RSAKey) -> int:
    return key.public_key.key_size


def _import(ident: tuple[str, ...], min_rsa_bits: int) -> _KeyEntry:
    _check_members(ident, min_rsa_bits)
    kty = ident[0]
    key: Key
    try:
        if kty == "EC":
            key = ECKey.import_key({"kty": "EC", "crv": ident[1], "x": ident[2], "y": ident[3]})
        elif kty == "OKP":
            key = OKPKey.import_key({"kty": "OKP", "crv": ident[1], "x": ident[2]})
        else:
            key = RSAKey.import_key({"kty": "RSA", "e": ident[1], "n": ident[2]})
    except (JoseError, ValueError, TypeError, KeyError):
        _fail("invalid_jwk", "the DPoP proof jwk is not a valid public key")
    crv = None if kty == "RSA" else ident[1]
    return _KeyEntry(key, key.thumbprint(), kty, crv)


def _load_key(jwk: dict[str, Any], policy: DPoPPolicy, cache: DPoPKeyCache | None) -> _KeyEntry:
    ident = _identify(jwk)
    if cache is None:
        return _import(ident, policy.min_rsa_bits)
    entry = cache.keys.get(ident)
    if entry is None:
        entry = _import(ident, policy.min_rsa_bits)
        cache.keys.put(ident, entry)
    elif isinstance(entry.key, RSAKey) and _rsa_bits(entry.key) < policy.min_rsa_bits:
        # The cache may be shared by policies with different minimums.
        _fail("weak_key", "the DPoP proof RSA key is too short")
    return entry


# -- the proof -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A verified DPoP proof.

    ``replay_key`` is ``base64url(sha256(jkt ":" jti))``: claim it with :func:`claim_replay`
    (or your own :class:`~pyramid_attesto.core.stores.ReplayStore` call) once the token or the
    grant verified, keeping it until ``expires_at`` (epoch seconds), the last moment at which
    this proof could still pass the ``iat`` window.
    """

    jkt: str
    jti: str
    htm: str
    htu: str
    iat: float
    alg: str
    ath: str | None
    nonce: str | None
    replay_key: str
    expires_at: int


def verify_proof(
    proof: str,
    *,
    htm: str,
    htu: str | Sequence[str],
    clock: Clock,
    access_token: str | None = None,
    jkt: str | None = None,
    nonces: NonceSource | None = None,
    policy: DPoPPolicy = DEFAULT_POLICY,
    key_cache: DPoPKeyCache | None = None,
) -> DPoPProof:
    """Verify one DPoP proof against the request it came with (RFC 9449 §4.3).

    :param proof: the value of the single ``DPoP`` header (see :func:`single_dpop_header`).
    :param htm: the request method, as received.
    :param htu: the request's canonical URL (DESIGN.md rule 1: from the configured public
        base URL, never the raw Host header); its query, if any, is ignored. Several URLs
        when one endpoint has several (its RFC 8705 §5 mTLS alias): the proof names one.
    :param clock: the source of "now" for the ``iat`` window.
    :param access_token: the access token presented with the proof, at a resource server:
        ``ath`` is then required and must match (§7.1).
    :param jkt: the thumbprint the access token (``cnf.jkt``) or the grant (``dpop_jkt``,
        a DPoP-bound code or refresh token) is bound to; the proof's key must be that key.
    :param nonces: when given, the proof must carry a nonce this source accepts (§8, §9);
        otherwise :class:`~pyramid_attesto.core.errors.UseDPoPNonce` with a fresh one.
    :param policy: algorithms, ``iat`` window and size limits.
    :param key_cache: a :class:`DPoPKeyCache` shared across requests (strongly advised:
        without it every proof pays a key import and a header parse).

    Raises :class:`~pyramid_attesto.core.errors.InvalidDPoPProof` (see the module docstring
    for its ``reason`` values) or :class:`~pyramid_attesto.core.errors.UseDPoPNonce`. The
    replay is not claimed here (DESIGN.md rule 7).
    """
    if not isinstance(proof, str):
        _fail("malformed", "the DPoP proof is not a well-formed JWT")
    if len(proof) > policy.max_size:
        _fail("too_large", "the DPoP proof is too large")
    parts = proof.split(".")
    if len(parts) != 3 or not proof.isascii():
        _fail("malformed", "the DPoP proof is not a well-formed JWT")
    header_segment, payload_segment, signature_segment = parts

    cached = key_cache.headers.get(header_segment) if key_cache is not None else None
    if cached is None or cached.policy is not policy:
        cached = _check_header(proof, policy, key_cache)
        if key_cache is not None:
            key_cache.headers.put(header_segment, cached)
    alg, model, entry = cached.alg, cached.model, cached.key

    try:
        payload = urlsafe_b64decode(payload_segment.encode("ascii"))
        signature = urlsafe_b64decode(signature_segment.encode("ascii"))
    except ValueError:
        _fail("malformed", "the DPoP proof is not a well-formed JWT")
    try:
        signing_input = proof[: len(header_segment) + 1 + len(payload_segment)]
        valid = model.verify(signing_input.encode("ascii"), signature, entry.key)
    except (JoseError, ValueError, TypeError):  # pragma: no cover - the key fits the alg
        valid = False
    if not valid:
        _fail("bad_signature", "the DPoP proof signature is invalid")

    try:
        claims = loads_json(payload)
    except ValueError:
        _fail("malformed", "the DPoP proof payload is not JSON")
    if not isinstance(claims, dict):
        _fail("malformed", "the DPoP proof payload is not a JSON object")
    for name, kind in _REQUIRED_CLAIMS:
        value = claims.get(name)
        if value is None:
            _fail(f"missing_{name}", f"the DPoP proof has no {name} claim")
        if not isinstance(value, kind):
            _fail(f"invalid_{name}", f"the DPoP proof {name} claim is not a string")
    iat = claims.get("iat")
    if iat is None:
        _fail("missing_iat", "the DPoP proof has no iat claim")
    if isinstance(iat, bool) or not isinstance(iat, (int, float)) or not math.isfinite(iat):
        _fail("invalid_iat", "the DPoP proof iat claim is not a number")
    jti: str = claims["jti"]
    claimed_htm: str = claims["htm"]
    claimed_htu: str = claims["htu"]
    ath = claims.get("ath")
    if ath is not None and not isinstance(ath, str):
        _fail("invalid_ath", "the DPoP proof ath claim is not a string")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        _fail("invalid_nonce", "the DPoP proof nonce claim is not a string")

    if claimed_htm != htm:
        _fail("htm_mismatch", "the DPoP proof htm does not match the request method")
    expected = (htu,) if isinstance(htu, str) else tuple(htu)
    if claimed_htu not in expected:
        _check_htu(claimed_htu, expected)
    now = clock.now()
    if iat < now - policy.max_age:
        _fail("iat_too_old", "the DPoP proof is too old")
    if iat > now + policy.max_future:
        _fail("iat_in_future", "the DPoP proof iat is in the future")
    if not jti or len(jti.encode("utf-8")) > MAX_JTI_BYTES:
        _fail("jti_too_long", "the DPoP proof jti must have 1 to 256 bytes")
    if access_token is not None:
        if ath is None:
            _fail("missing_ath", "the DPoP proof has no ath claim")
        # A hash of a token, compared without a timing signal (ath is public-length ASCII).
        if not hmac.compare_digest(ath.encode("utf-8"), compute_ath(access_token).encode()):
            _fail("ath_mismatch", "the DPoP proof ath does not match the access token")
    if jkt is not None and not constant_time_equals(entry.jkt, jkt):
        _fail("jkt_mismatch", "the DPoP proof key is not the bound key")
    if nonces is not None:
        if nonce is None:
            raise UseDPoPNonce(
                "a DPoP nonce is required", nonce=nonces.issue(), reason="missing_nonce"
            )
        if not nonces.check(nonce):
            raise UseDPoPNonce(
                "the DPoP nonce is invalid or expired", nonce=nonces.issue(), reason="invalid_nonce"
            )

    return DPoPProof(
        jkt=entry.jkt,
        jti=jti,
        htm=claimed_htm,
        htu=claimed_htu,
        iat=iat,
        alg=alg,
        ath=ath,
        nonce=nonce,
        replay_key=sha256_b64url(entry.jkt + ":" + jti),
        expires_at=math.floor(iat) + policy.max_age + 1,
    )


def _check_header(proof: str, policy: DPoPPolicy, cache: DPoPKeyCache | None) -> _HeaderEntry:
    """The header checks, typ to jwk, in RFC 9449 §4.3 order; parsed by joserfc."""
    try:
        obj = jws.extract_compact(proof.encode("ascii"), registry=policy._registry)
        header = obj.protected
        if not isinstance(header, dict):
            raise ValueError("header")
    except MissingAlgorithmError:
        # joserfc looks for "alg" before it looks at the type: an array is malformed.
        try:
            segment = json_b64decode(proof.partition(".")[0].encode("ascii"))
        except (ValueError, RecursionError):
            segment = None
        if not isinstance(segment, dict):
            _fail("malformed", "the DPoP proof is not a well-formed JWT")
        _fail("alg", "the DPoP proof has no alg")
    except (JoseError, ValueError, TypeError, RecursionError):  # deep nesting: not a crash
        _fail("malformed", "the DPoP proof is not a well-formed JWT")

    if header.get("typ") != DPOP_TYP:
        _fail("typ", "the DPoP proof typ must be dpop+jwt")
    alg = header["alg"]
    model = policy._models.get(alg) if isinstance(alg, str) else None
    if model is None:
        _fail("alg", "the DPoP proof alg is not allowed")
    if "crit" in header:
        _fail("crit", "the DPoP proof has critical header parameters")

    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        _fail("missing_jwk", "the DPoP proof has no jwk header")
    if not _PRIVATE_MEMBERS.isdisjoint(jwk):
        _fail("private_key", "the DPoP proof jwk must not contain a private key")
    jwk_alg = jwk.get("alg")
    if jwk_alg is not None and jwk_alg != alg:
        _fail("jwk_alg", "the DPoP proof jwk alg differs from the header alg")
    use = jwk.get("use")
    key_ops = jwk.get("key_ops")
    if (use is not None and use != "sig") or (
        key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops)
    ):
        _fail("invalid_jwk", "the DPoP proof jwk is not a signature key")
    entry = _load_key(jwk, policy, cache)
    kty, curves = _ALG_KEYS[alg]
    if entry.kty != kty or (curves is not None and entry.crv not in curves):
        _fail("key_alg", "the DPoP proof key does not fit its alg")
    return _HeaderEntry(policy, alg, model, entry)


def _check_htu(claimed: str, expected: Sequence[str]) -> None:
    try:
        canonical_claim = normalize_htu(claimed)
    except InvalidURL:
        _fail("invalid_htu", "the DPoP proof htu is not an absolute http(s) URL")
    for url in expected:
        try:
            if normalize_htu(url) == canonical_claim:
                return
        except InvalidURL:
            continue  # the server's URL is unusable: nothing matches it
    _fail("htu_mismatch", "the DPoP proof htu does not match the request URL")


class DPoPVerifier:
    """:func:`verify_proof` with its clock, policy and key cache bound once.

    >>> from pyramid_attesto.core.clock import FrozenClock
    >>> verifier = DPoPVerifier(clock=FrozenClock(), policy=DPoPPolicy(max_age=30))
    >>> verifier.policy.algorithms[0], verifier.key_cache.maxsize
    ('ES256', 4096)
    """

    __slots__ = ("clock", "key_cache", "policy")

    def __init__(
        self,
        *,
        clock: Clock,
        policy: DPoPPolicy = DEFAULT_POLICY,
        key_cache: DPoPKeyCache | None = None,
    ) -> None:
        self.clock = clock
        self.policy = policy
        self.key_cache = key_cache if key_cache is not None else DPoPKeyCache()

    def verify(
        self,
        proof: str,
        *,
        htm: str,
        htu: str | Sequence[str],
        access_token: str | None = None,
        jkt: str | None = None,
        nonces: NonceSource | None = None,
    ) -> DPoPProof:
        return verify_proof(
            proof,
            htm=htm,
            htu=htu,
            clock=self.clock,
            access_token=access_token,
            jkt=jkt,
            nonces=nonces,
            policy=self.policy,
            key_cache=self.key_cache,
        )


def single_dpop_header(values: Sequence[str]) -> str:
    """The one ``DPoP`` header value of a request (RFC 9449 §4.3 item 1).

    ``values`` are the request's ``DPoP`` header field values; a value holding a comma is
    several fields folded into one by an intermediary. Anything but exactly one refuses with
    ``reason="missing"`` or ``reason="multiple_headers"``.
    """
    if not values:
        _fail("missing", "a DPoP proof is required")
    if len(values) > 1 or "," in values[0]:
        _fail("multiple_headers", "exactly one DPoP header is allowed")
    value = values[0].strip(" \t")
    if not value:
        _fail("missing", "a DPoP proof is required")
    return value


def claim_replay(proof: DPoPProof, store: ReplayStore) -> None:
    """Record the proof's ``replay_key``; a second use raises ``reason="replayed"``.

    Call it only after the access token or grant verified (DESIGN.md rule 7). A full bounded
    store refuses too (DESIGN.md D18), so that also surfaces as a replay.
    """
    if not store.check_and_record(proof.replay_key, proof.expires_at):
        _fail("replayed", "the DPoP proof has already been used")


# -- server nonces (RFC 9449 §8, §9) ------------------------------------------------------


@runtime_checkable
class NonceSource(Protocol):
    """Where DPoP server nonces come from. ``check`` must be cheap and safe on any string."""

    def issue(self) -> str:
        """A nonce to send in a ``DPoP-Nonce`` header."""
        ...

    def check(self, nonce: str) -> bool:
        """Whether a proof's ``nonce`` claim is one this source issued and still accepts."""
        ...


_NONCE_LABEL: Final = b"pyramid_attesto dpop nonce v1\x00"
_NONCE_MAC_BYTES: Final = 16
_NONCE_RAW_BYTES: Final = 8 + _NONCE_MAC_BYTES
_NONCE_LENGTH: Final = len(b64url_encode(bytes(_NONCE_RAW_BYTES)))
MIN_NONCE_SECRET_BYTES: Final = 32
_NQCHARS: Final = re.compile(r"\A[\x21\x23-\x5B\x5D-\x7E]{1,256}\Z")


class HMACNonces:
    """Stateless nonces: ``base64url(window || HMAC-SHA256(secret, label || window)[:16])``.

    ``window`` is ``floor(now / window_seconds)``; a nonce is accepted during its window and the
    next, so it lives between ``window_seconds`` and twice that. Every node that shares the
    secrets accepts every node's nonces without storage. Rotation: put the new secret first
    (it signs), keep the old one after it (it still verifies) for two windows, then drop it.

    A secret generated per process (:meth:`generate`) breaks a multi-process deployment:
    :attr:`ephemeral` tells ``attesto check`` (DESIGN.md D19).
    """

    __slots__ = ("_cached", "_keys", "clock", "ephemeral", "window_seconds")

    def __init__(
        self,
        secrets: Iterable[bytes | str],
        *,
        clock: Clock,
        window_seconds: int = 300,
        ephemeral: bool = False,
    ) -> None:
        keys = tuple(s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in secrets)
        if not keys:
            raise ConfigurationError("the DPoP nonce secret list is empty")
        if any(len(k) < MIN_NONCE_SECRET_BYTES for k in keys):
            raise ConfigurationError(
                f"each DPoP nonce secret needs at least {MIN_NONCE_SECRET_BYTES} bytes"
            )
        if window_seconds < 1:
            raise ConfigurationError("the DPoP nonce window must be at least one second")
        self._keys = keys
        self.clock = clock
        self.window_seconds = window_seconds
        self.ephemeral = ephemeral
        self._cached: tuple[int, str] = (-1, "")

    @classmethod
    def generate(cls, *, clock: Clock, window_seconds: int = 300) -> HMACNonces:
        """Nonces from a random secret of this process only (single-process deployments)."""
        return cls(
            [secrets.token_bytes(MIN_NONCE_SECRET_BYTES)],
            clock=clock,
            window_seconds=window_seconds,
            ephemeral=True,
        )

    def _mac(self, key: bytes, window: bytes) -> bytes:
        return hmac.new(key, _NONCE_LABEL + window, hashlib.sha256).digest()[:_NONCE_MAC_BYTES]

    def _window(self) -> int:
        return math.floor(self.clock.now() / self.window_seconds)

    def issue(self) -> str:
        window = self._window()
        cached_window, nonce = self._cached
        if cached_window != window:
            packed = struct.pack(">Q", window)
            nonce = b64url_encode(packed + self._mac(self._keys[0], packed))
            self._cached = (window, nonce)
        return nonce

    def check(self, nonce: str) -> bool:
        if len(nonce) != _NONCE_LENGTH:
            return False
        try:
            raw = b64url_decode(nonce)
        except ValueError:
            return False
        packed, mac = raw[:8], raw[8:]
        if self._window() - struct.unpack(">Q", packed)[0] not in (0, 1):
            return False
        ok = False
        for key in self._keys:  # no early exit: the time does not tell which secret matched
            ok |= hmac.compare_digest(mac, self._mac(key, packed))
        return ok


class StoreNonces:
    """Nonces kept in a shared :class:`~pyramid_attesto.core.stores.DPoPNonceStore`.

    One nonce is reused for ``reuse_seconds`` (default half the ``ttl``) before a new one is
    stored, so anonymous requests cannot grow the store by asking for nonces.
    """

    __slots__ = ("_current", "clock", "reuse_seconds", "store", "ttl")

    def __init__(
        self,
        store: DPoPNonceStore,
        *,
        clock: Clock,
        ttl: int = 300,
        reuse_seconds: int | None = None,
    ) -> None:
        if ttl < 2:
            raise ConfigurationError("the DPoP nonce ttl must be at least two seconds")
        reuse = ttl // 2 if reuse_seconds is None else reuse_seconds
        if not 0 <= reuse < ttl:
            raise ConfigurationError("the DPoP nonce reuse period must be shorter than its ttl")
        self.store = store
        self.clock = clock
        self.ttl = ttl
        self.reuse_seconds = reuse
        self._current: tuple[float, str] | None = None

    def issue(self) -> str:
        now = self.clock.now()
        current = self._current
        if current is not None and now - current[0] < self.reuse_seconds:
            return current[1]
        nonce = self.store.issue(self.ttl)
        self._current = (now, nonce)
        return nonce

    def check(self, nonce: str) -> bool:
        # RFC 9449 §8.1: nonce = 1*NQCHAR; anything else never reaches the store.
        return bool(_NQCHARS.match(nonce)) and self.store.check(nonce)


# -- the client side -----------------------------------------------------------------------

_DEFAULT_ALG_FOR_CURVE: Final = {
    "P-256": "ES256",
    "P-384": "ES384",
    "P-521": "ES512",
    "secp256k1": "ES256K",
    "Ed25519": "EdDSA",
    "Ed448": "EdDSA",
}


def build_proof(
    key: Key,
    htm: str,
    htu: str,
    *,
    access_token: str | None = None,
    nonce: str | None = None,
    jti: str | None = None,
    iat: float | None = None,
    alg: str | None = None,
    clock: Clock | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """Sign a DPoP proof with ``key`` (a joserfc private key), as a client would (§4.2).

    ``htu`` loses its query and fragment; ``jti`` defaults to 128 random bits; ``iat`` to the
    clock's now; ``alg`` to ES256/384/512 by curve, EdDSA for OKP and PS256 for RSA.
    """
    kty = key.key_type
    if kty not in _PUBLIC_MEMBERS:
        raise ValueError("a DPoP proof needs an asymmetric key")
    if not key.is_private:
        raise ValueError("a DPoP proof is signed with a private key")
    if alg is None:
        alg = "PS256" if kty == "RSA" else _DEFAULT_ALG_FOR_CURVE[str(key.get("crv"))]
    if alg not in SUPPORTED_ALGORITHMS:
        raise ValueError("a DPoP proof needs an asymmetric algorithm")
    public = key.as_dict(private=False)
    jwk = {name: public[name] for name in _PUBLIC_MEMBERS[kty]}
    jwk["kty"] = kty
    claims: dict[str, Any] = {
        "jti": jti if jti is not None else b64url_encode(secrets.token_bytes(16)),
        "htm": htm,
        "htu": htu.split("#", 1)[0].split("?", 1)[0],
        "iat": iat if iat is not None else int((clock or SystemClock()).now()),
    }
    if access_token is not None:
        claims["ath"] = compute_ath(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    if extra_claims:
        claims.update(extra_claims)
    header = {"typ": DPOP_TYP, "alg": alg, "jwk": jwk}
    payload = json.dumps(claims, separators=(",", ":"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jws.serialize_compact(header, payload, key, algorithms=[alg])


def allowed_algorithms(policy: DPoPPolicy = DEFAULT_POLICY) -> list[str]:
    """``dpop_signing_alg_values_supported`` for metadata: exactly what the policy accepts."""
    return list(policy.algorithms)
