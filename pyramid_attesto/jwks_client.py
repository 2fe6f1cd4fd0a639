"""A remote JWK Set as a verification keystore: a resource server deployed apart from its
authorization server trusts it only through the ``jwks_uri`` (RFC 8414 §2, RFC 7517 §5).

:class:`RemoteJWKS` satisfies the verification half of
:class:`~pyramid_attesto.core.keys.Keystore` (it cannot sign):

- the set is fetched lazily, kept for the ``Cache-Control: max-age`` the server sends (bounded
  to ``[min_ttl, max_ttl]``, ``default_ttl`` without one) and re-fetched when it goes stale;
- a token naming an unknown ``kid`` triggers one re-fetch (the authorization server rotated
  its key), at most once per ``unknown_kid_interval`` seconds, so a stream of forged ``kid``
  values cannot turn the resource server into a request amplifier;
- a failed fetch keeps the keys already known (a stale set is better than none) and backs
  off exponentially up to ``max_backoff``; with no keys at all the request gets ``503
  temporarily_unavailable``, not a misleading ``invalid_token``;
- one fetch at a time (DESIGN.md D18): a request that finds a fetch in flight uses the keys
  it has instead of queueing behind it;
- the fetch itself (:func:`urllib_fetcher`) follows no redirect, has a timeout and a size cap,
  and the document is bounded to ``max_keys`` keys; keys with private members, another
  ``use`` than ``sig``, an unsupported type or an RSA modulus under 2048 bits are skipped.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from .core.clock import Clock
from .core.encoding import b64url_decode
from .core.errors import ConfigurationError, TemporarilyUnavailable
from .core.keys import (
    MIN_RSA_BITS,
    SIGNING_ALGORITHMS,
    Algorithm,
    JWKSet,
    KeyAlgorithmMismatch,
    PublicJWK,
    Signer,
    VerificationKey,
)

__all__ = ["FetchError", "FetchResponse", "Fetcher", "RemoteJWKS", "urllib_fetcher"]

logger = logging.getLogger("pyramid_attesto.jwks_client")

_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_PUBLIC_MEMBERS: Final = {"EC": ("crv", "x", "y"), "OKP": ("crv", "x"), "RSA": ("n", "e")}
# Which algorithms a key without an ``alg`` member may verify.
_FITS: Final[Mapping[tuple[str, str | None], frozenset[str]]] = {
    ("EC", "P-256"): frozenset({"ES256"}),
    ("OKP", "Ed25519"): frozenset({"EdDSA"}),
    ("RSA", None): frozenset({"RS256", "PS256"}),
}
_MAX_AGE: Final = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,10})\"?", re.IGNORECASE)


class FetchError(Exception):
    """The JWK Set could not be fetched (network, status, size, redirect)."""


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """An HTTP response as a fetcher returns it; ``headers`` have lower-case names."""

    status: int
    body: bytes
    headers: Mapping[str, str]


Fetcher = Callable[[str, float, int], FetchResponse]
"""``fetch(url, timeout_seconds, max_bytes) -> FetchResponse``; raises :class:`FetchError`."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        raise FetchError("the JWKS endpoint answered with a redirect (not followed)")


def urllib_fetcher(url: str, timeout: float, max_bytes: int) -> FetchResponse:
    """GET ``url`` with the standard library: no redirects, a timeout, at most ``max_bytes``."""
    if not url.startswith(("https://", "http://")):
        raise FetchError("only http(s) URLs are fetched")
    opener = urllib.request.build_opener(_NoRedirect())
    request = urllib.request.Request(  # noqa: S310  (scheme checked above)
        url, headers={"Accept": "application/jwk-set+json, application/json"}
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
            headers = {k.lower(): v for k, v in response.headers.items()}
            status = response.status
    except urllib.error.HTTPError as exc:
        raise FetchError(f"the JWKS endpoint answered {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchError(f"the JWKS endpoint could not be reached: {exc}") from None
    if len(body) > max_bytes:
        raise FetchError("the JWK Set is larger than the size cap")
    return FetchResponse(status, body, headers)


def _import_public(
    jwk: Mapping[str, Any],
) -> tuple[str, frozenset[str], VerificationKey, PublicJWK]:
    """(kid, the algorithms it may verify, key, public JWK) of one remote JWK; ``ValueError``
    to skip it. A key without ``alg`` verifies what its type fits (RSA: RS256 and PS256)."""
    if not isinstance(jwk, Mapping):
        raise ValueError("not an object")
    kid, kty, alg = jwk.get("kid"), jwk.get("kty"), jwk.get("alg")
    if not isinstance(kid, str) or not kid:
        raise ValueError("no kid")
    if kty not in _PUBLIC_MEMBERS:
        raise ValueError("unsupported kty")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise ValueError("private members in a public JWK Set")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("not a signing key")
    if alg is not None and alg not in SIGNING_ALGORITHMS:
        raise ValueError("unsupported alg")
    members = {name: jwk.get(name) for name in _PUBLIC_MEMBERS[kty]}
    if not all(isinstance(v, str) for v in members.values()):
        raise ValueError("missing key members")
    fits = _FITS.get((kty, None if kty == "RSA" else members.get("crv")))
    if fits is None or (alg is not None and alg not in fits):
        raise ValueError("the key does not fit its alg")
    data = {"kty": kty, **members}
    if kty == "RSA" and _rsa_bits(data["n"]) < MIN_RSA_BITS:
        raise ValueError("RSA key below 2048 bits")  # checked before joserfc warns about it
    try:
        key = import_key(data)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(key, (RSAKey, ECKey, OKPKey)):  # pragma: no cover - kty checked
        raise ValueError("unsupported key")
    public: dict[str, Any] = {**data, "kid": kid, "use": "sig"}
    if alg is not None:
        public["alg"] = alg
    return kid, (frozenset({alg}) if alg is not None else fits), key, cast(PublicJWK, public)


def _rsa_bits(n: str) -> int:
    try:
        return int.from_bytes(b64url_decode(n), "big").bit_length()
    except ValueError:
        raise ValueError("RSA modulus is not base64url") from None


class RemoteJWKS:
    """The keys of an authorization server, fetched from its ``jwks_uri`` (see the module
    docstring). Thread-safe; share one per ``jwks_uri``.

    ``fetcher`` defaults to :func:`urllib_fetcher`; tests inject their own.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        fetcher: Fetcher | None = None,
        timeout: float = 5.0,
        max_bytes: int = 256 * 1024,
        max_keys: int = 64,
        default_ttl: int = 300,
        min_ttl: int = 60,
        max_ttl: int = 86400,
        unknown_kid_interval: int = 60,
        max_backoff: int = 300,
    ) -> None:
        if not 0 < min_ttl <= default_ttl <= max_ttl:
            raise ConfigurationError("jwks_uri cache: need 0 < min_ttl <= default_ttl <= max_ttl")
        self.url = url
        self.clock = clock
        self._fetch = fetcher or urllib_fetcher
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_keys = max_keys
        self.default_ttl = default_ttl
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self.unknown_kid_interval = unknown_kid_interval
        self.max_backoff = max_backoff
        self._keys: dict[str, tuple[frozenset[str], VerificationKey]] = {}
        self._public: tuple[PublicJWK, ...] = ()
        self._fetched = False
        self._expires_at = -math.inf
        self._last_attempt = -math.inf
        self._failures = 0
        self._retry_at = -math.inf
        self._lock = threading.Lock()

    # -- Keystore (verification half) ---------------------------------------------------

    @property
    def algorithms(self) -> frozenset[Algorithm]:
        """Nothing: a remote key set verifies, it never signs."""
        return frozenset()

    def signer(self, alg: Algorithm | None = None) -> Signer:
        raise ConfigurationError(
            "a resource server trusting a jwks_uri cannot sign: it holds no private key"
        )

    def jwks(self) -> JWKSet:
        """The keys currently known (as fetched, public members only)."""
        return {"keys": list(self._public)}

    def verification_key(self, kid: str, alg: str) -> VerificationKey | None:
        now = self.clock.now()
        if now >= self._expires_at:
            self._refresh(now)
        found = self._keys.get(kid)
        if found is None and now - self._last_attempt >= self.unknown_kid_interval:
            self._refresh(now)  # the authorization server may have rotated its key
            found = self._keys.get(kid)
        if found is None:
            if not self._fetched:
                raise TemporarilyUnavailable(
                    "the authorization server's keys are unavailable", reason="jwks_unavailable"
                )
            return None
        algorithms, key = found
        if alg not in algorithms:
            raise KeyAlgorithmMismatch(kid)
        return key

    # -- fetching --------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Fetch the set now (unless a fetch is in flight); whether it succeeded."""
        return self._refresh(self.clock.now(), force=True)

    def _refresh(self, now: float, *, force: bool = False) -> bool:
        if not force and now < self._retry_at:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another thread is fetching: use what we have
        try:
            self._last_attempt = now
            try:
                response = self._fetch(self.url, self.timeout, self.max_bytes)
                keys, public = self._parse(response)
            except (FetchError, ValueError) as exc:
                self._failures += 1
                backoff = min(self.max_backoff, 2 ** min(self._failures, 16))
                self._retry_at = now + backoff
                logger.warning("jwks_uri %s: %s (retry in %ss)", self.url, exc, backoff)
                return False
            self._keys, self._public = keys, public
            self._fetched = True
            self._failures = 0
            self._retry_at = -math.inf
            self._expires_at = now + self._ttl(response.headers)
            return True
        finally:
            self._lock.release()

    def _ttl(self, headers: Mapping[str, str]) -> int:
        cache_control = headers.get("cache-control", "")
        if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
            return self.min_ttl
        match = _MAX_AGE.search(cache_control)
        if match is None:
            return self.default_ttl
        return max(self.min_ttl, min(self.max_ttl, int(match.group(1))))

    def _parse(
        self, response: FetchResponse
    ) -> tuple[dict[str, tuple[frozenset[str], VerificationKey]], tuple[PublicJWK, ...]]:
        if response.status != 200:
            raise FetchError(f"the JWKS endpoint answered {response.status}")
        if len(response.body) > self.max_bytes:
            raise FetchError("the JWK Set is larger than the size cap")
        try:
            document = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            raise FetchError("the JWK Set is not JSON") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise FetchError('the JWK Set has no "keys" array')
        keys: dict[str, tuple[frozenset[str], VerificationKey]] = {}
        public: list[PublicJWK] = []
        for entry in entries[: self.max_keys]:
            try:
                kid, algorithms, key, jwk = _import_public(entry)
            except ValueError as exc:
                logger.info("jwks_uri %s: a key was skipped (%s)", self.url, exc)
                continue
            if kid in keys:
                logger.warning("jwks_uri %s: kid %r appears twice; both skipped", self.url, kid)
                keys[kid] = (frozenset(), _UNUSABLE)
                continue
            keys[kid] = (algorithms, key)
            public.append(jwk)
        usable = {kid: v for kid, v in keys.items() if v[1] is not _UNUSABLE}
        return usable, tuple(j for j in public if j["kid"] in usable)


_UNUSABLE: Any = object()
